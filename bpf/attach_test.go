package bpf_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// Each counter has its own name and the action its name says; a counter
// past the set is "unknown".
func TestCounterNamesAndActions(t *testing.T) {
	seen := map[string]bool{}
	for c := bpf.Counter(0); int(c) < bpf.NumCounters; c++ {
		name := c.String()
		if seen[name] || name == "unknown" {
			t.Fatalf("counter %d: name %q repeated or unknown", c, name)
		}
		seen[name] = true
		want := strings.SplitN(name, "_", 2)[0]
		switch {
		case name == "tx_live_failed": // a frame that did not leave
			want = "drop"
		case want == "redirect", want == "pass", want == "drop", want == "tx":
		default: // stamp_failed, scan_*: not an action of a frame's own
			want = "drop"
		}
		if got := c.Action(); got != want {
			t.Errorf("%s: action %q, want %q", name, got, want)
		}
	}
	if bpf.Counter(bpf.NumCounters).String() != "unknown" {
		t.Errorf("counter past the set: %q", bpf.Counter(bpf.NumCounters))
	}
	for _, s := range []string{"auto", "native", "generic"} {
		if m, err := bpf.ParseAttachMode(s); err != nil || m.String() != s {
			t.Errorf("%s: %v %v", s, m, err)
		}
	}
	if _, err := bpf.ParseAttachMode("offload"); err == nil {
		t.Error("offload accepted")
	}
}

// Attach, on a veth (native XDP) and on a bridge (no native XDP):
// native where the driver has it; auto falls back to generic and says
// why; native where it has not says so; a second program on the same
// interface is refused, naming the likely cause.
func TestAttachModes(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	if out, err := exec.Command("ip", "-n", l.ClientNS, "link", "add", "xdcbr0", "up", "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("a bridge: %v %s", err, out)
	}
	veth, err := lab.LinkByName(l.ClientNS, lab.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	br, err := lab.LinkByName(l.ClientNS, "xdcbr0")
	if err != nil {
		t.Fatal(err)
	}
	load := func() *bpf.Program {
		p, err := bpf.Load(0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return p
	}
	attach := func(p *bpf.Program, ifindex int, m bpf.AttachMode) (used bpf.AttachMode, err error) {
		if e := lab.Do(l.ClientNS, func() error { used, err = p.Attach(ifindex, m); return nil }); e != nil {
			t.Fatal(e)
		}
		return used, err
	}
	p := load()
	if used, err := attach(p, veth.Attrs().Index, bpf.AttachAuto); err != nil || used != bpf.AttachNative || p.NativeErr != nil {
		t.Fatalf("auto on a veth: %v %v (native refused: %v)", used, err, p.NativeErr)
	}
	if _, err := attach(load(), veth.Attrs().Index, bpf.AttachNative); err == nil || !strings.Contains(err.Error(), "already has an XDP program") {
		t.Fatalf("a second program: %v", err)
	}
	if _, err := attach(load(), br.Attrs().Index, bpf.AttachNative); err == nil || !strings.Contains(err.Error(), "no native XDP") {
		t.Fatalf("native on a bridge: %v", err)
	}
	// The TX device is an interface of the caller's namespace: the veth
	// there, not an index no interface has.
	for _, c := range []struct {
		ifindex int
		ok      bool
	}{{veth.Attrs().Index, true}, {1 << 30, false}} {
		if err := lab.Do(l.ClientNS, func() error { return p.SetTxDevice(c.ifindex) }); (err == nil) != c.ok {
			t.Errorf("TX device %d: %v", c.ifindex, err)
		}
	}
	// With a TX device the generator's SYN is redirected to it (XDP_REDIRECT).
	if _, _, err := p.GenerateOnce(&scanCases()[0].tpl); err != nil {
		t.Errorf("the generator with a TX device: %v", err)
	}
	g := load()
	if used, err := attach(g, br.Attrs().Index, bpf.AttachAuto); err != nil || used != bpf.AttachGeneric || g.NativeErr == nil {
		t.Fatalf("auto on a bridge: %v %v (native refused: %v)", used, err, g.NativeErr)
	}
	// The two veth refusals, each named with its way out: an MTU above
	// what veth's XDP takes (ERANGE), and a peer with more TX queues than
	// the veth has RX queues (ENOSPC).
	ip := func(args ...string) {
		if out, err := exec.Command("ip", append([]string{"-n", l.ClientNS}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("link", "add", "xdcbig0", "mtu", "9000", "type", "veth", "peer", "name", "xdcbig1", "mtu", "9000")
	ip("link", "add", "xdcq0", "numrxqueues", "1", "type", "veth", "peer", "name", "xdcq1", "numtxqueues", "4")
	ip("link", "set", "xdcbig0", "up")
	ip("link", "set", "xdcbig1", "up")
	ip("link", "set", "xdcq0", "up")
	ip("link", "set", "xdcq1", "up")
	if out, err := exec.Command("ip", "netns", "exec", l.ClientNS, "ethtool", "-L", "xdcq1", "tx", "4").CombinedOutput(); err != nil {
		t.Fatalf("ethtool -L xdcq1 tx 4: %v %s", err, out)
	}
	for _, c := range []struct{ dev, want string }{{"xdcbig0", "MTU is above the driver's XDP limit"}, {"xdcq0", "more TX queues than it has RX queues"}} {
		ln, err := lab.LinkByName(l.ClientNS, c.dev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := attach(load(), ln.Attrs().Index, bpf.AttachNative); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("native on %s: %v, want %q", c.dev, err, c.want)
		}
		a := load()
		if used, err := attach(a, ln.Attrs().Index, bpf.AttachAuto); err != nil || used != bpf.AttachGeneric || a.NativeErr == nil {
			t.Errorf("auto on %s: %v %v (native refused: %v)", c.dev, used, err, a.NativeErr)
		}
	}
}
