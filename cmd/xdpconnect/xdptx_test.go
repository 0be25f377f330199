package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// --xdp-tx sends every frame from the XDP program. Against servers nobody
// here wrote the books must be those of the AF_XDP path: nginx accepts
// every connection of a fin-mode run (so our SYN, ACK, FIN and final ACK
// all arrived whole) and answers every request of a request-mode run
// (data segments up to the MSS through the same slots); the Linux
// listener accepts every handshake of both families.
func TestXDPTX(t *testing.T) {
	testutil.SkipIfNotSupported(t, bpf.LiveFrames())
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, PeerGRO: true})
	t.Run("nginx", func(t *testing.T) {
		dst := netip.AddrPortFrom(l.ServerAddr, 80)
		ng := startNginx(t, l.ServerNS, dst)
		r, stderr, code := runBinary(t, l.ClientNS, "--dst", dst.String(), "--count", "3000", "--rate", "20000", "--close", "fin", "--xdp-tx")
		if code != 0 || r == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if r.Established != 3000 || r.Closed != 3000 || r.XDP["tx_live"] == 0 || r.XDP["tx_live_failed"] != 0 {
			t.Fatalf("established %d, closed %d, failed %v, xdp %v", r.Established, r.Closed, r.Failed, r.XDP)
		}
		if acc := ng.waitAccepts(t, 3000); acc != 3000 {
			t.Fatalf("nginx accepted %d of 3000", acc)
		}
		r, stderr, code = runBinary(t, l.ClientNS, "--dst", dst.String(), "--count", "1000", "--rate", "5000", "--http", "GET /64k", "--xdp-tx")
		if code != 0 || r == nil || r.Requests == nil {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if q := r.Requests; q.Completed != 1000 || q.Status["200"] != 1000 || q.ResponseBytes < 1000*64<<10 {
			t.Fatalf("requests %+v", q)
		}
	})
	t.Run("listener", func(t *testing.T) {
		before := l.Listener.Accepted()
		r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
			o.opts.Targets = []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080), netip.AddrPortFrom(l.ServerAddr6, 8080)}
			o.opts.XDPTX = true
			o.plan.Count = 4000
		})
		if r.Established != 4000 || len(r.Families) != 2 {
			t.Fatalf("report %+v", r)
		}
		if acc := l.Listener.WaitAccepted(before+4000, 100*time.Millisecond, 10*time.Second); acc != before+4000 {
			t.Fatalf("the listener accepted %d of 4000", acc-before)
		}
	})
}

// Against the XDP reflector every handshake of a full-speed run completes
// and takes exactly three frames from the program (SYN, ACK, RST), also
// with two workers sending at once through their own slots.
func TestXDPTXReflector(t *testing.T) {
	testutil.SkipIfNotSupported(t, bpf.LiveFrames())
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Queues: 2})
	attachReflector(t, l)
	const n = 200000
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.opts.XDPTX, o.opts.Workers = true, 2
		o.plan.Count, o.plan.Rate = n, 0
	})
	if r.Workers != 2 || r.Established != n || r.XDP["tx_live"] != 3*n || r.XDP["tx_live_failed"] != 0 || r.Retransmits != 0 {
		t.Fatalf("%d workers: established %d of %d, retransmits %d, xdp %v", r.Workers, r.Established, n, r.Retransmits, r.XDP)
	}
}

// A veth whose peer would drop the program's frames (no XDP program, GRO
// off: the kernel's defaults) is refused before anything is sent, with
// the fix.
func TestXDPTXRefused(t *testing.T) {
	// One function decides for both flags; on a kernel without live
	// frames it refuses for that reason first.
	want := "gro on"
	if bpf.LiveFrames() != nil {
		want = "live-frame mode"
	}
	for _, flags := range [][]string{{"--xdp-tx"}, {"--xdp-syn", "--close", "synonly"}} {
		l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
		args := append([]string{"--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(), "--count", "10"}, flags...)
		_, stderr, code := runBinary(t, l.ClientNS, args...)
		if code != 2 || !strings.Contains(stderr, want) || !strings.Contains(stderr, flags[0]) {
			t.Fatalf("%v: exit %d, want 2 and %q: %s", flags, code, want, stderr)
		}
		if n := l.Listener.Accepted(); n != 0 {
			t.Fatalf("%v: a refused run sent SYNs: %d accepted", flags, n)
		}
	}
}

// attachReflector puts the bench's XDP SYN-ACK reflector on the server
// veth, answering port 8080.
func attachReflector(t *testing.T, l *lab.Lab) *reflector.Reflector {
	t.Helper()
	var refl *reflector.Reflector
	err := lab.Do(l.ServerNS, func() error {
		srv, err := net.InterfaceByName(lab.ServerIf)
		if err != nil {
			return err
		}
		refl, err = reflector.Attach(srv.Index, reflector.Reflect, 8080)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { refl.Close() })
	return refl
}
