package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"os"
	"strings"

	"github.com/xdpconnect/xdpconnect"
)

// tlsFlags are run's HTTPS flags.
type tlsFlags struct {
	on              bool
	ca, version     string
	ciphers, curves string
	resume          bool
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.on, "tls", false, "request mode over TLS (HTTPS): a TLS handshake on each connection (SNI from --host), then the requests inside it; certificates are not verified unless --tls-ca is given")
	fs.StringVar(&t.ca, "tls-ca", "", "with --tls: verify the server's certificate against the CA certificates in this PEM file (the name checked is --host, else the target's address)")
	fs.StringVar(&t.version, "tls-version", "", "with --tls: offer only this version, 1.2 or 1.3 (default: both)")
	fs.StringVar(&t.ciphers, "tls-ciphers", "", "with --tls: TLS 1.2 cipher suites to offer, comma-separated IANA names (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,...; TLS 1.3's are not configurable)")
	fs.StringVar(&t.curves, "tls-curves", "", "with --tls: key exchange groups to offer, comma-separated: X25519, P-256, P-384, P-521, X25519MLKEM768")
	fs.BoolVar(&t.resume, "tls-resume", false, "with --tls: resume sessions (TLS 1.3 tickets, TLS 1.2 tickets or session IDs) on later connections; the report gives the share resumed")
}

// curveIDs are the groups --tls-curves takes, by name.
var curveIDs = map[string]tls.CurveID{"X25519": tls.X25519, "P-256": tls.CurveP256, "P-384": tls.CurveP384, "P-521": tls.CurveP521,
	"X25519MLKEM768": tls.X25519MLKEM768}

// build is the plan's TLS from the flags (nil without --tls); set says
// which flags were given, host is --host, else the first target's
// address (verified against the certificate's IP names; no SNI is sent
// for an address).
func (t *tlsFlags) build(set map[string]bool, host string) (*xdpconnect.TLS, error) {
	if !t.on {
		for _, name := range []string{"tls-ca", "tls-version", "tls-ciphers", "tls-curves", "tls-resume"} {
			if set[name] {
				return nil, usageError("--%s needs --tls", name)
			}
		}
		return nil, nil
	}
	out := &xdpconnect.TLS{ServerName: host, Resume: t.resume}
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, usageError("--tls-ca: %v", err)
		}
		out.RootCAs = x509.NewCertPool()
		if !out.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageError("--tls-ca %s: no PEM certificate in it", t.ca)
		}
	}
	switch t.version {
	case "":
	case "1.2":
		out.MinVersion, out.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		out.MinVersion, out.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	default:
		return nil, usageError("--tls-version %q: want 1.2 or 1.3", t.version)
	}
	if t.ciphers != "" {
		known := map[string]uint16{}
		for _, c := range tls.CipherSuites() {
			known[c.Name] = c.ID
		}
		for _, c := range tls.InsecureCipherSuites() {
			known[c.Name] = c.ID
		}
		for _, name := range strings.Split(t.ciphers, ",") {
			id, ok := known[strings.TrimSpace(name)]
			if !ok {
				return nil, usageError("--tls-ciphers: unknown cipher suite %q (IANA names, as 'openssl ciphers -stdname' prints them)", name)
			}
			out.CipherSuites = append(out.CipherSuites, id)
		}
	}
	if t.curves != "" {
		for _, name := range strings.Split(t.curves, ",") {
			id, ok := curveIDs[strings.TrimSpace(name)]
			if !ok {
				return nil, usageError("--tls-curves: unknown group %q: want X25519, P-256, P-384, P-521 or X25519MLKEM768", name)
			}
			out.CurvePreferences = append(out.CurvePreferences, id)
		}
	}
	return out, nil
}
