package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Nginx is Debian's nginx serving in a lab namespace: a server nobody here
// wrote, whose own stub_status counters judge the client. It serves "ok\n"
// at /, an empty body at /empty, 1 KiB at /1k, 16 KiB at /16k, 64 KiB at /64k, a chunked
// SSI page at /chunked.html, 404 at /missing, and its counters at
// /nginx_status.
type Nginx struct {
	ns     string
	addr   netip.AddrPort
	dir    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	probes uint64 // status requests made: each is one connection and one request
}

const nginxConf = `worker_processes %[6]s;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 65535; multi_accept on; }
http {
	access_log off;
	log_format tls '$ssl_protocol $ssl_session_reused $status';
	%[3]s
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s backlog=65535;
		root %[1]s/www;
		%[4]s
		location = /nginx_status { stub_status; }
		` + nginxLocations + `
	}
	%[5]s
}
`

// nginxLocations are what every server of the lab's nginx serves.
const nginxLocations = `location = /empty { return 200 ""; }
		location = /chunked.html { ssi on; }
		location ~ ^/(1k|16k|64k|missing)$ { }
		location / { return 200 "ok\n"; }`

// limitZone and limitReq are the limit_req lines for perSecond requests a
// second over all clients (the key is the server's port), or nothing.
func limitZone(perSecond int) string {
	if perSecond <= 0 {
		return ""
	}
	return fmt.Sprintf("limit_req_zone $server_port zone=all:1m rate=%dr/s;", perSecond)
}

func limitReq(perSecond int) string {
	if perSecond <= 0 {
		return ""
	}
	// A burst of 50 ms of the rate: with 10 ms, a client that runs late
	// and catches up (a busy host's scheduling) drew 503s at seven eighths
	// of the limit, and the limit looked lower than it is. A rate 10 %
	// over the limit still exhausts 50 ms of burst within half a second.
	return fmt.Sprintf("limit_req zone=all burst=%d nodelay;", max(perSecond/20, 1))
}

// ErrNoNginx says nginx is not installed.
var ErrNoNginx = errors.New("nginx is not installed (Debian package nginx-light)")

// StartNginx runs nginx in namespace ns on addr, with its files in dir (a
// fresh directory), pinned to cpus when not empty (taskset list). It
// returns once nginx answers.
func StartNginx(ns string, addr netip.AddrPort, dir, cpus string) (*Nginx, error) {
	return StartNginxRateLimited(ns, addr, dir, cpus, 0)
}

// StartNginxRateLimited is StartNginx with a limit on the requests nginx
// serves, perSecond for all clients together (limit_req, a burst of 5 %
// of it); past it nginx answers 503. A device with a known limit. 0: none.
func StartNginxRateLimited(ns string, addr netip.AddrPort, dir, cpus string, perSecond int) (*Nginx, error) {
	return startNginx(ns, addr, dir, cpus, perSecond, nil)
}

// NginxTLS is an HTTPS server of the lab's nginx, beside its plain one
// (which serves the counters).
type NginxTLS struct {
	// Addr is where it listens.
	Addr netip.AddrPort
	// CertPEM and KeyPEM are its certificate (chain) and key.
	CertPEM, KeyPEM []byte
	// Protocols are ssl_protocols (default "TLSv1.2 TLSv1.3").
	Protocols string
	// ServerName, when set, is the only name served: a handshake with
	// another SNI name (or none) is rejected (ssl_reject_handshake).
	ServerName string
	// Workers is worker_processes (default 1).
	Workers int
}

// StartNginxTLS is StartNginx with an HTTPS server too. Its access log
// (TLSLog) has a line per request: protocol, "r" for a resumed session
// ("." else), status.
func StartNginxTLS(ns string, addr netip.AddrPort, dir, cpus string, t NginxTLS) (*Nginx, error) {
	return startNginx(ns, addr, dir, cpus, 0, &t)
}

// TLSLog is the HTTPS server's access log, a line per request.
func (n *Nginx) TLSLog() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(n.dir, "tls-access.log"))
	if err != nil {
		return nil, err
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' }), nil
}

// tlsServers is the configuration of t's servers.
func tlsServers(dir string, t *NginxTLS) string {
	if t == nil {
		return ""
	}
	protocols := t.Protocols
	if protocols == "" {
		protocols = "TLSv1.2 TLSv1.3"
	}
	common := fmt.Sprintf(`ssl_certificate %[1]s/cert.pem;
		ssl_certificate_key %[1]s/key.pem;
		ssl_protocols %[2]s;
		ssl_session_cache shared:TLS:10m;
		ssl_session_tickets on;`, dir, protocols)
	name, reject := "", ""
	if t.ServerName != "" {
		name = "server_name " + t.ServerName + ";"
		reject = fmt.Sprintf(`server {
		listen %s ssl default_server;
		ssl_reject_handshake on;
		%s
	}`, t.Addr, common)
	}
	return fmt.Sprintf(`server {
		listen %[1]s ssl backlog=65535;
		%[2]s
		%[3]s
		root %[4]s/www;
		access_log %[4]s/tls-access.log tls;
		`+nginxLocations+`
	}
	%[5]s`, t.Addr, name, common, dir, reject)
}

func startNginx(ns string, addr netip.AddrPort, dir, cpus string, perSecond int, t *NginxTLS) (*Nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, ErrNoNginx
	}
	// nginx's workers run as an unprivileged user: they must reach dir.
	// A test's temporary directory and its parent are made 0700; others
	// are left as they are.
	dirs := []string{dir}
	if p := filepath.Dir(dir); strings.HasPrefix(p, os.TempDir()+"/") {
		dirs = append(dirs, p)
	}
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	for name, body := range map[string]string{"1k": strings.Repeat("k", 1024), "16k": strings.Repeat("s", 16<<10), "64k": strings.Repeat("z", 64<<10),
		"chunked.html": "chunked <!--# echo var=\"uri\" --> end\n"} {
		if err := os.WriteFile(filepath.Join(www, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	workers := 1
	if t != nil {
		workers = max(t.Workers, 1)
		for name, b := range map[string][]byte{"cert.pem": t.CertPEM, "key.pem": t.KeyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return nil, err
			}
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf(nginxConf, dir, addr, limitZone(perSecond), limitReq(perSecond), tlsServers(dir, t), strconv.Itoa(workers))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	args := []string{"ip", "netns", "exec", ns, bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log")}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &Nginx{ns: ns, addr: addr, dir: dir, cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, err := n.Stats(); err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx did not come up: %s", log)
		}
	}
}

// Stop ends nginx (fast shutdown, then a kill), by its PID.
func (n *Nginx) Stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
}

// Stats are nginx's accepted-connections and requests counters, less our
// own status requests (the one being answered is counted already).
func (n *Nginx) Stats() (accepts, requests uint64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var body string
	err = Do(n.ns, func() error {
		// The socket is made here, in the server namespace.
		c, err := net.DialTimeout("tcp", n.addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		n.probes++
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET /nginx_status HTTP/1.0\r\nHost: lab\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&b)
		body = b.String()
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	// "Active connections: 1 \nserver accepts handled requests\n 12 12 12 \n..."
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return 0, 0, fmt.Errorf("stub_status: %q", body)
	}
	f := strings.Fields(lines[2])
	if len(f) < 3 {
		return 0, 0, fmt.Errorf("stub_status: %q", body)
	}
	a, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	r, err := strconv.ParseUint(f[2], 10, 64)
	return a - n.probes, r - n.probes, err
}
