// Package l7 is request mode's application layer: the request a connection
// sends, and a streaming reader that finds the end of its response in the
// bytes TCP delivers in order, segment by segment, with 16 bytes of state
// per connection and no allocation.
//
// Like tcp, it has no I/O and no clock. It reads HTTP/1.x responses (status
// line, headers, a body framed by Content-Length, chunked transfer coding
// or the server's close) and raw responses (a byte count, a substring, or
// the server's close). Bodies are counted, not kept. The limits are
// deliberate and documented: one response per connection, no TLS, no
// HTTP/2, headers of at most Spec.MaxHeader bytes, responses of at most
// Spec.MaxResponse bytes.
package l7

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Framing says how the end of a response is found.
type Framing uint8

// Framings.
const (
	// HTTP reads an HTTP/1.x response: the status line, the headers, and
	// the body its headers frame (RFC 9112 §6.3).
	HTTP Framing = iota
	// Bytes ends the response after Spec.ExpectBytes bytes.
	Bytes
	// Substring ends the response once Spec.Expect has been seen.
	Substring
	// Close ends the response when the server closes the connection.
	Close
)

// Default limits.
const (
	DefaultMaxResponse = 1 << 20
	DefaultMaxHeader   = 16 << 10
	// MaxRequest bounds the request: it is sent from a preallocated
	// frame per segment, within the initial congestion window.
	MaxRequest = 64 << 10
	// MaxExpect bounds the substring (its match progress is one byte).
	MaxExpect = 255
)

// Spec is a run's request and how its responses are read; one Spec serves
// every connection.
type Spec struct {
	Request     []byte
	Framing     Framing
	ExpectBytes uint32 // Bytes
	Expect      []byte // Substring
	// HEAD marks a request whose response has no body whatever its
	// headers say (RFC 9112 §6.3 rule 1).
	HEAD bool
	// MaxResponse and MaxHeader bound a response's bytes and its header
	// section's: past them it ends as ErrTooLarge (0: the defaults).
	MaxResponse uint32
	MaxHeader   uint32
	fail        []uint8 // Expect's KMP failure function
}

// Validate checks the spec and fills its defaults.
func (s *Spec) Validate() error {
	if len(s.Request) == 0 {
		return errors.New("empty request")
	}
	if len(s.Request) > MaxRequest {
		return fmt.Errorf("request of %d bytes: at most %d", len(s.Request), MaxRequest)
	}
	if s.MaxResponse == 0 {
		s.MaxResponse = DefaultMaxResponse
	}
	if s.MaxHeader == 0 {
		s.MaxHeader = DefaultMaxHeader
	}
	if s.MaxHeader > 65535 {
		return fmt.Errorf("header limit %d: at most 65535 bytes", s.MaxHeader)
	}
	switch s.Framing {
	case Bytes:
		if s.ExpectBytes == 0 || s.ExpectBytes > s.MaxResponse {
			return fmt.Errorf("expected response of %d bytes: want 1 to %d", s.ExpectBytes, s.MaxResponse)
		}
	case Substring:
		if len(s.Expect) == 0 || len(s.Expect) > MaxExpect {
			return fmt.Errorf("expected substring of %d bytes: want 1 to %d", len(s.Expect), MaxExpect)
		}
		s.fail = failure(s.Expect)
	}
	return nil
}

// failure is the KMP failure function of p: fail[i] is the length of the
// longest proper border of p[:i+1].
func failure(p []byte) []uint8 {
	f := make([]uint8, len(p))
	k := 0
	for i := 1; i < len(p); i++ {
		for k > 0 && p[i] != p[k] {
			k = int(f[k-1])
		}
		if p[i] == p[k] {
			k++
		}
		f[i] = uint8(k)
	}
	return f
}

// HTTPRequest builds an HTTP/1.1 request without a body: method, target
// (an origin-form path), Host, a User-Agent, and Connection: close unless
// keepAlive.
func HTTPRequest(method, path, host string, keepAlive bool) ([]byte, error) {
	if !isToken(method) {
		return nil, fmt.Errorf("HTTP method %q: want a token (RFC 9110 §5.6.2: letters, digits and !#$%%&'*+-.^_`|~), e.g. GET", method)
	}
	if !strings.HasPrefix(path, "/") || strings.IndexFunc(path, isCtlOrSpace) >= 0 {
		return nil, fmt.Errorf("HTTP path %q: want an absolute path without spaces or control bytes", path)
	}
	if host == "" || strings.ContainsRune(host, '/') || strings.IndexFunc(host, isCtlOrSpace) >= 0 {
		return nil, fmt.Errorf("HTTP host %q: want a host[:port] without spaces, slashes or control bytes", host)
	}
	conn := "close"
	if keepAlive {
		conn = "keep-alive"
	}
	return []byte(method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: xdpconnect\r\nAccept: */*\r\nConnection: " + conn + "\r\n\r\n"), nil
}

// isToken says s is an HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isCtlOrSpace is a space or a control character (RFC 5234 CTL): bytes a
// request line or a header value must not carry raw.
func isCtlOrSpace(r rune) bool { return r <= ' ' || r == 0x7f }

// Unescape turns a request literal's escapes into bytes: \r, \n, \t, \\
// and \xHH.
func Unescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i++; i == len(s) {
			return nil, errors.New("request literal ends in a lone backslash")
		}
		switch s[i] {
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '\\':
			b = append(b, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("request literal: short \\x escape at byte %d", i-1)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("request literal: bad \\x escape at byte %d", i-1)
			}
			b = append(b, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("request literal: unknown escape \\%c", s[i])
		}
	}
	return b, nil
}
