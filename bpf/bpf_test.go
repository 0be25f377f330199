package bpf_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
	"golang.org/x/sys/unix"
)

const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

var (
	ours      = netip.MustParseAddr("198.18.0.1")
	dedicated = netip.MustParseAddr("198.18.128.7")
	ours6     = netip.MustParseAddr("2001:db8::1")
	dedic6    = netip.MustParseAddr("2001:db8::77")
	peer      = [4]byte{198, 18, 0, 2}
)

func tcpFrame(dst netip.Addr, dport uint16) []byte {
	b := make([]byte, tcp.MaxReplyLen)
	p := &tcp.Path{SrcMAC: [6]byte{2, 0, 0, 0, 0, 2}, DstMAC: [6]byte{2, 0, 0, 0, 0, 1}, Src: peer, Dst: dst.As4(), SrcPort: 8080, DstPort: dport}
	n := tcp.Build(b, p, &tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 1, Ack: 2})
	return b[:n]
}

func vlan(f []byte) []byte {
	out := append([]byte{}, f[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x05)
	return append(out, f[12:]...)
}

// icmpFrame is a destination-unreachable from the peer quoting a segment
// from src:sport.
func icmpFrame(src netip.Addr, sport uint16, typ uint8) []byte {
	quoted := tcpFrame(netip.AddrFrom4(peer), 8080)[14:] // an IPv4+TCP packet ...
	q := append([]byte{}, quoted[:28]...)
	copy(q[12:16], src.AsSlice()) // ... that we sent: src = us
	copy(q[16:20], peer[:])
	binary.BigEndian.PutUint16(q[20:], sport)
	binary.BigEndian.PutUint16(q[22:], 8080)
	icmp := append([]byte{typ, 1, 0, 0, 0, 0, 0, 0}, q...)
	binary.BigEndian.PutUint16(icmp[2:], tcp.Checksum(icmp))
	ip := make([]byte, 20)
	tcp.IPv4(ip).Encode(&tcp.IPv4Fields{TotalLen: uint16(20 + len(icmp)), TTL: 64, Protocol: tcp.ProtoICMP, Src: peer, Dst: src.As4()})
	eth := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}
	return append(append(eth, ip...), icmp...)
}

func arpFrame(target netip.Addr) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 2, 0, 0, 0, 0, 0, 0}
	return append(f, target.AsSlice()...)
}

func ipv6Frame(dst netip.Addr, next uint8, l4 []byte) []byte {
	f := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, next, 64}
	f[18], f[19] = byte(len(l4)>>8), byte(len(l4))
	f = append(f, netip.MustParseAddr("2001:db8::2").AsSlice()...)
	f = append(f, dst.AsSlice()...)
	return append(f, l4...)
}

func tcpHdr(dport uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], 8080)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12], h[13] = 0x50, 0x12
	return h
}

// TestProgramDecisions runs the XDP program on crafted frames
// (BPF_PROG_TEST_RUN) and checks each redirect/pass/drop decision and the
// counter it bumps. A real AF_XDP socket sits in the XSKMAP slot of queue 0
// so redirects can succeed.
func TestProgramDecisions(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	prog, err := bpf.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(prog.SetPorts(10000, 20000))
	must(prog.AddAddr(ours, false))
	must(prog.AddAddr(dedicated, true))
	must(prog.AddAddr(ours6, false))
	must(prog.AddAddr(dedic6, true))

	ifindex, _, err := l.ClientLink()
	must(err)
	var sock *xsk.Socket
	must(lab.Do(l.ClientNS, func() (err error) {
		sock, err = xsk.Open(ifindex, 0, xsk.Options{NumFrames: 256, RingSize: 64})
		return
	}))
	t.Cleanup(func() { sock.Close() })

	frag := tcpFrame(ours, 15000)
	frag[14+6] = 0x20 // more fragments
	trunc := tcpFrame(dedicated, 15000)[:14+20+10]
	trunc[14+3] = byte(20 + 10) // IP total length matches the cut
	ns := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, dedic6.AsSlice()...)
	// A solicitation for an address the kernel owns is the kernel's to
	// answer: answering it too would make two advertisements.
	nsKernel := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, ours6.AsSlice()...)
	icmp6 := append([]byte{1, 4, 0, 0, 0, 0, 0, 0}, ipv6Frame(ours6, 6, tcpHdr(8080))[14:14+40]...)
	q6 := tcpHdr(8080)
	binary.BigEndian.PutUint16(q6[0:], 15000)
	icmp6 = append(icmp6, q6[:8]...)
	copy(icmp6[8+8:8+24], ours6.AsSlice()) // quoted source is us
	// The other ICMPv6 errors that quote a segment: time exceeded and
	// parameter problem are the connection's too; echo is not an error.
	icmp6Type := func(typ byte) []byte {
		f := append([]byte{}, icmp6...)
		f[0] = typ
		return f
	}

	cases := []struct {
		name    string
		frame   []byte
		action  uint32
		counter bpf.Counter
	}{
		{"tcp ours", tcpFrame(ours, 15000), xdpRedirect, bpf.RedirectTCP},
		{"tcp other port", tcpFrame(ours, 22), xdpPass, bpf.PassOtherPort},
		{"tcp other address", tcpFrame(netip.MustParseAddr("198.18.0.9"), 15000), xdpPass, bpf.PassNotLocal},
		{"tcp ours vlan", vlan(tcpFrame(ours, 15000)), xdpRedirect, bpf.RedirectTCP},
		{"tcp dedicated", tcpFrame(dedicated, 10000), xdpRedirect, bpf.RedirectTCP},
		{"fragment", frag, xdpPass, bpf.PassOtherProto},
		{"truncated tcp to dedicated", trunc, xdpDrop, bpf.DropMalformed},
		{"icmp quoting ours", icmpFrame(ours, 15000, 3), xdpRedirect, bpf.RedirectICMP},
		{"icmp quoting other port", icmpFrame(ours, 22, 3), xdpPass, bpf.PassOtherPort},
		{"icmp time exceeded quoting ours", icmpFrame(ours, 15000, 11), xdpRedirect, bpf.RedirectICMP},
		{"icmp parameter problem quoting ours", icmpFrame(ours, 15000, 12), xdpRedirect, bpf.RedirectICMP},
		{"icmp echo request", icmpFrame(ours, 15000, 8), xdpPass, bpf.PassOtherProto},
		{"arp for dedicated", arpFrame(dedicated), xdpRedirect, bpf.RedirectARP},
		{"arp for kernel address", arpFrame(ours), xdpPass, bpf.PassNotLocal},
		{"ipv6 tcp ours", ipv6Frame(ours6, 6, tcpHdr(15000)), xdpRedirect, bpf.RedirectTCP},
		{"ipv6 tcp other port", ipv6Frame(ours6, 6, tcpHdr(80)), xdpPass, bpf.PassOtherPort},
		{"ipv6 neighbour solicitation", ipv6Frame(netip.MustParseAddr("ff02::1:ff00:77"), 58, ns), xdpRedirect, bpf.RedirectND},
		{"ipv6 neighbour solicitation for a kernel address", ipv6Frame(netip.MustParseAddr("ff02::1:ff00:1"), 58, nsKernel), xdpPass, bpf.PassNotLocal},
		{"icmpv6 unreachable quoting ours", ipv6Frame(ours6, 58, icmp6), xdpRedirect, bpf.RedirectICMP},
		{"icmpv6 packet too big quoting ours", ipv6Frame(ours6, 58, icmp6Type(2)), xdpRedirect, bpf.RedirectICMP},
		{"icmpv6 time exceeded quoting ours", ipv6Frame(ours6, 58, icmp6Type(3)), xdpRedirect, bpf.RedirectICMP},
		{"icmpv6 parameter problem quoting ours", ipv6Frame(ours6, 58, icmp6Type(4)), xdpRedirect, bpf.RedirectICMP},
		{"icmpv6 type 5 (not an error that quotes)", ipv6Frame(ours6, 58, icmp6Type(5)), xdpPass, bpf.PassOtherProto},
		{"icmpv6 echo request", ipv6Frame(ours6, 58, icmp6Type(128)), xdpPass, bpf.PassOtherProto},
		{"other ethertype", append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xcc}, make([]byte, 46)...), xdpPass, bpf.PassOtherEtherType},
		{"runt ip", append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}, 0x45, 0), xdpPass, bpf.PassMalformed},
	}
	// The socket is registered after the no-socket cases.
	noSock := []struct {
		name    string
		frame   []byte
		action  uint32
		counter bpf.Counter
	}{
		{"no socket, kernel address", tcpFrame(ours, 15000), xdpPass, bpf.PassNoSocket},
		{"no socket, dedicated address", tcpFrame(dedicated, 15000), xdpDrop, bpf.DropNoSocket},
	}
	check := func(name string, frame []byte, action uint32, counter bpf.Counter) {
		t.Helper()
		before, err := prog.Counters()
		must(err)
		got, err := prog.Run(frame)
		if err != nil {
			t.Errorf("%s: run: %v", name, err)
			return
		}
		after, err := prog.Counters()
		must(err)
		if got != action {
			t.Errorf("%s: action %d, want %d", name, got, action)
		}
		for i := 0; i < bpf.NumCounters; i++ {
			d := after[i] - before[i]
			want := uint64(0)
			if bpf.Counter(i) == counter {
				want = 1
			}
			if bpf.Counter(i) == bpf.StampFailed && counter == bpf.RedirectTCP && prog.NoStamps {
				want = 1 // the kernel refuses the stamp's helper: every redirected segment goes unstamped
			}
			if d != want {
				t.Errorf("%s: counter %v moved by %d, want %d", name, bpf.Counter(i), d, want)
			}
		}
	}
	for _, c := range noSock {
		check(c.name, c.frame, c.action, c.counter)
	}
	must(prog.RegisterXSK(0, sock.FD()))
	for _, c := range cases {
		check(c.name, c.frame, c.action, c.counter)
	}
}

// The counters are per CPU, and Counters sums them all: the program run
// on each CPU in turn (the test's thread pinned there) moves the sum by
// one each time. Reading one CPU's value, or the last, passes on one CPU
// and fails on the others.
func TestCountersSumEveryCPU(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to tell a sum from one CPU's value")
	}
	testutil.RequirePrivileges(t)
	prog, err := bpf.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := prog.SetPorts(10000, 20000); err != nil {
		t.Fatal(err)
	}
	frame := tcpFrame(netip.MustParseAddr("198.18.0.9"), 15000) // not ours: passed, counted
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &all)
	for c := 0; c < runtime.NumCPU(); c++ {
		var one unix.CPUSet
		one.Set(c)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatalf("pin to CPU %d: %v", c, err)
		}
		before, err := prog.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prog.Run(frame); err != nil {
			t.Fatal(err)
		}
		after, err := prog.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if d := after[bpf.PassNotLocal] - before[bpf.PassNotLocal]; d != 1 {
			t.Fatalf("run on CPU %d moved the summed counter by %d, want 1", c, d)
		}
	}
}
