package main

import (
	"bufio"
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
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
)

// nginx is Debian's nginx serving in a lab namespace: a server nobody
// here wrote, whose own stub_status counters are the judge.
type nginx struct {
	ns     string
	addr   netip.AddrPort
	mu     sync.Mutex
	probes uint64 // status requests made: each is one accepted connection
}

const nginxConf = `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 65535; multi_accept on; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s backlog=65535;
		root %[1]s/www;
		location = /nginx_status { stub_status; }
		location = /empty { return 200 ""; }
		location = /chunked.html { ssi on; }
		location ~ ^/(1k|64k|missing)$ { }
		location / { return 200 "ok\n"; }
	}
}
`

// startNginx runs nginx in ns on addr until the test ends (ended by PID).
func startNginx(t *testing.T, ns string, addr netip.AddrPort) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nginx is not installed: .ci/run must install it")
		}
		t.Skip("needs nginx (apt-get install nginx-light)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Bodies for request mode: 1 KiB and 64 KiB files (Content-Length,
	// the larger one many segments), and an SSI page nginx sends chunked.
	www := filepath.Join(dir, "www")
	// nginx's workers run as an unprivileged user: they must reach it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"1k": strings.Repeat("k", 1024), "64k": strings.Repeat("z", 64<<10),
		"chunked.html": "chunked <!--# echo var=\"uri\" --> end\n"} {
		if err := os.MkdirAll(www, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(www, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // nginx: fast shutdown
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	n := &nginx{ns: ns, addr: addr}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := n.accepts(); err == nil {
			return n
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not come up: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// accepts is nginx's accepted-connections counter, less the connections of
// our own status requests.
func (n *nginx) accepts() (uint64, error) {
	a, _, err := n.stats()
	return a, err
}

// stats are nginx's accepted-connections and requests counters, less our
// own status requests (the one being answered is counted already).
func (n *nginx) stats() (accepts, requests uint64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var body string
	err = lab.Do(n.ns, func() error {
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

// waitAccepts polls until nginx has accepted want connections or the count
// stops moving for settle.
func (n *nginx) waitAccepts(t *testing.T, want uint64) uint64 {
	t.Helper()
	var last uint64
	since := time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v, err := n.accepts()
		if err != nil {
			t.Fatal(err)
		}
		if v >= want {
			return v
		}
		if v != last {
			last, since = v, time.Now()
		} else if time.Since(since) > 2*time.Second {
			return v
		}
	}
	return last
}
