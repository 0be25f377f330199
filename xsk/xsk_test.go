package xsk_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
	"golang.org/x/sys/unix"
)

const portLo, portHi = 10000, 20000

type rig struct {
	lab   *lab.Lab
	prog  *bpf.Program
	socks []*xsk.Socket
	peer  *testutil.Raw
	cmac  net.HardwareAddr
}

// newRig attaches the XDP program to the client veth of a fresh lab and opens
// one socket per queue.
func newRig(t *testing.T, queues int, o xsk.Options) *rig {
	t.Helper()
	l := testutil.NewLab(t, lab.Options{Queues: queues, ListenPorts: []int{8080}})
	r := &rig{lab: l}
	ifindex, mac, err := l.ClientLink()
	if err != nil {
		t.Fatal(err)
	}
	r.cmac = mac
	err = lab.Do(l.ClientNS, func() error {
		p, err := bpf.Load(0)
		if err != nil {
			return err
		}
		r.prog = p
		if _, err := p.Attach(ifindex, bpf.AttachNative); err != nil {
			return err
		}
		if err := p.SetPorts(portLo, portHi); err != nil {
			return err
		}
		if err := p.AddAddr(lab.ClientAddr, false); err != nil {
			return err
		}
		for q := 0; q < queues; q++ {
			s, err := xsk.Open(ifindex, q, o)
			if err != nil {
				return err
			}
			r.socks = append(r.socks, s)
			if err := p.RegisterXSK(q, s.FD()); err != nil {
				return err
			}
		}
		return nil
	})
	t.Cleanup(func() {
		for _, s := range r.socks {
			s.Close()
		}
		if r.prog != nil {
			r.prog.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.socks[0].ZeroCopy() && r.socks[0].FallbackReason == "" {
		t.Log("copy mode requested")
	}
	r.peer = testutil.NewRaw(t, l.ServerNS, lab.ServerIf)
	return r
}

// frameTo is a TCP segment from the server to the client's dport, numbered
// by seq so order and content can be checked (as xskxceiver does).
func (r *rig) frameTo(dport uint16, seq uint32) []byte {
	b := make([]byte, tcp.MaxReplyLen)
	p := &tcp.Path{SrcMAC: [6]byte(r.peer.MAC), DstMAC: [6]byte(r.cmac), Src: lab.ServerAddrDirect.As4(), Dst: lab.ClientAddr.As4(), SrcPort: 8080, DstPort: dport}
	return b[:tcp.Build(b, p, &tcp.Reply{Flags: tcp.FlagACK, Seq: tcp.Seq(seq), Ack: 1})]
}

// drain receives until n frames arrived or the timeout passed, checks each
// frame parses as TCP, recycles them, and returns their sequence numbers.
// waitStats reads s's statistics until cond holds, for up to 2 s (the
// kernel counts a drop when it delivers the frame, soon after the send).
func waitStats(t *testing.T, s *xsk.Socket, cond func(xsk.Stats) bool) xsk.Stats {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; s.Poll(10) {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) || time.Now().After(deadline) {
			return st
		}
	}
}

// firstN says seqs are 0, 1, ... n-1.
func firstN(seqs []uint32, n int) bool {
	if len(seqs) != n {
		return false
	}
	for i, s := range seqs {
		if s != uint32(i) {
			return false
		}
	}
	return true
}

// Poll says false after its timeout with nothing received, true when a
// frame is there, and neither sets the socket's error.
func TestPoll(t *testing.T) {
	r := newRig(t, 1, xsk.Options{NumFrames: 256, RingSize: 64})
	s := r.socks[0]
	start := time.Now()
	if s.Poll(20) {
		t.Fatal("Poll says ready with nothing sent")
	}
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Fatalf("Poll(20) returned after %v", el)
	}
	if err := r.peer.Send(r.frameTo(15000, 7)); err != nil {
		t.Fatal(err)
	}
	if !s.Poll(2000) {
		t.Fatal("Poll says not ready with a frame sent")
	}
	if got := drain(s, 1, time.Second); len(got) != 1 || got[0] != 7 || s.Err() != nil {
		t.Fatalf("received %v, socket error %v", got, s.Err())
	}
}

func drain(s *xsk.Socket, n int, timeout time.Duration) []uint32 {
	var seqs []uint32
	descs := make([]xsk.Desc, 64)
	deadline := time.Now().Add(timeout)
	for len(seqs) < n && time.Now().Before(deadline) {
		k := s.Receive(descs)
		for _, d := range descs[:k] {
			var pk tcp.Packet
			// The lab's veth peer keeps TX checksum offload (the kernel
			// default): its own segments carry partial checksums.
			if tcp.ParseWith(s.Frame(d), &pk, tcp.AcceptPartialChecksum) == tcp.KindTCP {
				seqs = append(seqs, uint32(pk.Seg.Seq))
			}
		}
		s.Recycle(descs[:k])
		if k == 0 {
			s.Poll(10)
		}
	}
	return seqs
}

func TestReceiveOurFlowsOnly(t *testing.T) {
	r := newRig(t, 1, xsk.Options{NumFrames: 1024, RingSize: 256})
	for i := 0; i < 100; i++ {
		if err := r.peer.Send(r.frameTo(15000, uint32(i))); err != nil {
			t.Fatal(err)
		}
		if err := r.peer.Send(r.frameTo(22, uint32(1000+i))); err != nil { // not ours
			t.Fatal(err)
		}
	}
	seqs := drain(r.socks[0], 100, 3*time.Second)
	if len(seqs) != 100 {
		t.Fatalf("received %d of 100 frames", len(seqs))
	}
	for i, s := range seqs {
		if s != uint32(i) {
			t.Fatalf("frame %d has seq %d: reordered or foreign", i, s)
		}
	}
	if extra := drain(r.socks[0], 1, 200*time.Millisecond); len(extra) != 0 {
		t.Fatalf("foreign frames reached the socket: %v", extra)
	}
	c, err := r.prog.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c[bpf.RedirectTCP] != 100 || c[bpf.PassOtherPort] < 100 {
		t.Fatalf("counters: redirect_tcp %d pass_other_port %d", c[bpf.RedirectTCP], c[bpf.PassOtherPort])
	}
}

// While the program is attached and the socket bound, the host's own TCP and
// ICMP on the same interface keep working.
func TestKernelTrafficUnaffected(t *testing.T) {
	r := newRig(t, 1, xsk.Options{NumFrames: 256, RingSize: 64})
	for i := 0; i < 5; i++ {
		err := lab.Do(r.lab.ClientNS, func() error {
			c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(context.Background(), "tcp4", "198.18.0.2:8080")
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			t.Fatalf("kernel TCP with XDP attached: %v", err)
		}
	}
	err := lab.Do(r.lab.ClientNS, func() error { return ping(lab.ServerAddrDirect) })
	if err != nil {
		t.Fatalf("ping with XDP attached: %v", err)
	}
}

// ping sends one ICMP echo request and waits for the reply.
func ping(dst netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	req := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'x', 'd', 'p', 'c'}
	binary.BigEndian.PutUint16(req[2:], tcp.Checksum(req))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		if n >= 28 && buf[20] == 0 && buf[24] == 0x12 && buf[25] == 0x34 {
			return nil
		}
	}
}

// A two-queue veth with a socket per queue: frames of many flows spread over
// both queues, and each socket receives only its queue's frames.
func TestMultiQueue(t *testing.T) {
	r := newRig(t, 2, xsk.Options{NumFrames: 512, RingSize: 128})
	// Kernel connects from the server to ports in our range: each flow's
	// SYNs leave on a hashed TX queue and arrive on that RX queue here.
	err := lab.Do(r.lab.ServerNS, func() error {
		for i := 0; i < 64; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			// A non-blocking connect sends its SYN before it returns.
			_ = unix.Connect(fd, &unix.SockaddrInet4{Port: portLo + i, Addr: lab.ClientAddr.As4()})
			defer unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a := drain(r.socks[0], 64, 500*time.Millisecond)
	b := drain(r.socks[1], 64, 500*time.Millisecond)
	if len(a) == 0 || len(b) == 0 || len(a)+len(b) < 64 {
		t.Fatalf("queue 0 got %d frames, queue 1 got %d (want both > 0, total >= 64)", len(a), len(b))
	}
	t.Logf("queue 0: %d frames, queue 1: %d frames", len(a), len(b))
}

// Statistics provoked on purpose (xskxceiver): a full RX ring counts
// rx_ring_full, an empty fill ring counts rx_fill_ring_empty_descs; both
// recover once the application catches up. TX wraps its ring many times.
func TestRingStatisticsAndWraparound(t *testing.T) {
	t.Run("rx_ring_full", func(t *testing.T) {
		r := newRig(t, 1, xsk.Options{NumFrames: 512, RingSize: 128, RxRingSize: 32})
		for i := 0; i < 100; i++ {
			_ = r.peer.Send(r.frameTo(15000, uint32(i)))
		}
		st := waitStats(t, r.socks[0], func(st xsk.Stats) bool { return st.RxRingFull > 0 })
		if st.RxRingFull == 0 {
			t.Fatalf("rx_ring_full not counted: %+v", st)
		}
		// Frames there was a buffer for but no ring slot are not drops
		// of the kernel's rx_dropped (the two are told apart).
		if st.RxDropped != 0 {
			t.Fatalf("rx_dropped %d with buffers to spare: %+v", st.RxDropped, st)
		}
		// Each held frame in its own buffer: the first 32, in order.
		if got := drain(r.socks[0], 32, time.Second); !firstN(got, 32) {
			t.Fatalf("after overflow received %v, want the 32 the ring held (0..31)", got)
		}
		for i := 0; i < 10; i++ {
			_ = r.peer.Send(r.frameTo(15000, uint32(500+i)))
		}
		if got := drain(r.socks[0], 10, time.Second); len(got) != 10 || got[0] != 500 {
			t.Fatalf("no recovery: %v", got)
		}
	})
	t.Run("fill_ring_empty", func(t *testing.T) {
		r := newRig(t, 1, xsk.Options{NumFrames: 64, RingSize: 64})
		for i := 0; i < 60; i++ {
			_ = r.peer.Send(r.frameTo(15000, uint32(i)))
		}
		// 32 RX frames, ring room for 64: the 28 beyond the frames are
		// the kernel's rx_dropped (no buffer), not ring-full.
		st := waitStats(t, r.socks[0], func(st xsk.Stats) bool { return st.RxFillRingEmptyDescs > 0 && st.RxDropped >= 28 })
		if st.RxFillRingEmptyDescs == 0 || st.RxDropped != 28 || st.RxRingFull != 0 {
			t.Fatalf("60 frames into 32 buffers: rx_dropped %d (want 28), rx_ring_full %d (want 0), fill ring empty %d: %+v", st.RxDropped, st.RxRingFull, st.RxFillRingEmptyDescs, st)
		}
		if got := drain(r.socks[0], 32, time.Second); !firstN(got, 32) {
			t.Fatalf("received %v, want the first 32 frames, one in each RX frame", got)
		}
		for i := 0; i < 10; i++ {
			_ = r.peer.Send(r.frameTo(15000, uint32(900+i)))
		}
		if got := drain(r.socks[0], 10, time.Second); len(got) != 10 || got[0] != 900 || got[9] != 909 {
			t.Fatalf("no recovery after refill: %v", got)
		}
	})
	t.Run("tx_wraparound", func(t *testing.T) {
		r := newRig(t, 1, xsk.Options{NumFrames: 128, RingSize: 32})
		s := r.socks[0]
		const total = 32 * 20
		got := make(chan int)
		go func() {
			n := 0
			for n < total {
				f := r.peer.Recv(2*time.Second, false)
				if f == nil {
					break
				}
				var pk tcp.Packet
				if tcp.Parse(f, &pk) == tcp.KindTCP && pk.DstPort == 8080 && uint32(pk.Seg.Seq) == uint32(n) {
					n++
				}
			}
			got <- n
		}()
		addrs := make([]uint64, 16)
		descs := make([]xsk.Desc, 16)
		path := &tcp.Path{SrcMAC: [6]byte(r.cmac), DstMAC: [6]byte(r.peer.MAC), Src: lab.ClientAddr.As4(), Dst: lab.ServerAddrDirect.As4(), SrcPort: 15000, DstPort: 8080}
		sent := 0
		deadline := time.Now().Add(5 * time.Second)
		for sent < total && time.Now().Before(deadline) {
			n := s.Alloc(addrs[:min(16, total-sent)])
			for i := 0; i < n; i++ {
				l := tcp.Build(s.Buf(addrs[i]), path, &tcp.Reply{Flags: tcp.FlagACK, Seq: tcp.Seq(sent + i), Ack: 1})
				descs[i] = xsk.Desc{Addr: addrs[i], Len: uint32(l)}
			}
			q := s.Transmit(descs[:n])
			s.Free(addrs[q:n])
			sent += q
			if err := s.Kick(); err != nil {
				t.Fatal(err)
			}
			// Pace to what the receiver's raw socket can absorb.
			time.Sleep(time.Millisecond)
		}
		for s.Pending() > 0 && time.Now().Before(deadline) {
			_ = s.Kick()
			s.Complete()
		}
		if n := testutil.Await(t, got, 10*time.Second, "the peer's receiver to end"); n != total {
			t.Fatalf("peer received %d of %d frames in order", n, total)
		}
		if s.FreeFrames() != 64 || s.Pending() != 0 {
			t.Fatalf("%d TX frames free after completion (want 64), %d pending (want 0)", s.FreeFrames(), s.Pending())
		}
	})
	t.Run("tx_ring_full", func(t *testing.T) {
		r := newRig(t, 1, xsk.Options{NumFrames: 128, RingSize: 32})
		s := r.socks[0]
		addrs := make([]uint64, 40)
		if n := s.Alloc(addrs); n != 40 {
			t.Fatalf("%d TX frames, want 40", n)
		}
		descs := make([]xsk.Desc, 40)
		for i := range descs {
			descs[i] = xsk.Desc{Addr: addrs[i], Len: 60}
		}
		// Not kicked: the ring of 32 takes 20, then 12 of the next 20,
		// once short.
		if q := s.Transmit(descs[:20]); q != 20 {
			t.Fatalf("an empty TX ring of 32 took %d of 20", q)
		}
		if st, _ := s.Stats(); st.TxRingFull != 0 || st.AllocFail != 0 {
			t.Fatalf("nothing short yet, but tx_ring_full %d, alloc failures %d", st.TxRingFull, st.AllocFail)
		}
		if q := s.Transmit(descs[20:]); q != 12 {
			t.Fatalf("a TX ring of 32 holding 20 took %d of 20, want 12", q)
		}
		s.Free(addrs[32:])
		if st, err := s.Stats(); err != nil || st.TxRingFull != 1 || st.TxFrames != 32 {
			t.Fatalf("after one short Transmit: tx_ring_full %d (want 1), tx frames %d (want 32), %v", st.TxRingFull, st.TxFrames, err)
		}
		// 64 TX frames, 32 in the ring: Alloc of 100 gets the other 32
		// and counts the shortfall once.
		more := make([]uint64, 100)
		if n := s.Alloc(more); n != 32 || s.FreeFrames() != 0 {
			t.Fatalf("Alloc of 100 with 32 free: %d, %d left", n, s.FreeFrames())
		}
		// The 64 TX frames (32 in the ring, 32 just taken) are the UMEM's
		// last 64, each once: none is an RX frame the kernel may be
		// writing into.
		seen := map[uint64]bool{}
		for _, a := range append(addrs[:32:32], more[:32]...) {
			if a < 64*2048 || a >= 128*2048 || a%2048 != 0 || seen[a] {
				t.Fatalf("TX frame at %d: outside the TX frames 64..127, or twice", a)
			}
			seen[a] = true
		}
		if st, _ := s.Stats(); st.AllocFail != 1 {
			t.Fatalf("alloc failures %d, want 1", st.AllocFail)
		}
		fd := s.FD()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil {
			t.Fatalf("socket fd %d still open after Close", fd)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("a second Close: %v", err)
		}
	})
}

// Copy mode sends at most 32 frames a wakeup and answers EAGAIN while more
// wait: one Kick sends a whole batch of 200 (its budget of 8 wakeups),
// not the first 32 with the rest left until some later kick. The client
// veth's own TX counter, read right after, tells.
func TestKickSendsWholeBatch(t *testing.T) {
	r := newRig(t, 1, xsk.Options{NumFrames: 1024, RingSize: 256})
	s := r.socks[0]
	txPackets := func() uint64 {
		out, err := exec.Command("ip", "-n", r.lab.ClientNS, "-j", "-s", "link", "show", "dev", lab.ClientIf).Output()
		if err != nil {
			t.Fatal(err)
		}
		var links []struct {
			Stats struct {
				TX struct {
					Packets uint64 `json:"packets"`
				} `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
			t.Fatalf("ip -j -s link: %v\n%s", err, out)
		}
		return links[0].Stats.TX.Packets
	}
	const n = 200
	addrs := make([]uint64, n)
	descs := make([]xsk.Desc, n)
	if got := s.Alloc(addrs); got != n {
		t.Fatalf("%d TX frames, want %d", got, n)
	}
	path := &tcp.Path{SrcMAC: [6]byte(r.cmac), DstMAC: [6]byte(r.peer.MAC), Src: lab.ClientAddr.As4(), Dst: lab.ServerAddrDirect.As4(), SrcPort: 15000, DstPort: 8080}
	for i := range descs {
		l := tcp.Build(s.Buf(addrs[i]), path, &tcp.Reply{Flags: tcp.FlagRST, Seq: tcp.Seq(i)})
		descs[i] = xsk.Desc{Addr: addrs[i], Len: uint32(l)}
	}
	before := txPackets()
	if q := s.Transmit(descs); q != n {
		t.Fatalf("TX ring took %d of %d", q, n)
	}
	if err := s.Kick(); err != nil {
		t.Fatal(err)
	}
	if d := txPackets() - before; d != n {
		t.Fatalf("one Kick sent %d of %d frames (copy mode's budget is 32 a wakeup)", d, n)
	}
}

// Killing the owning process with SIGKILL leaves no XDP program on the
// interface: the bpf_link dies with it.
func TestSIGKILLDetaches(t *testing.T) {
	if spec := os.Getenv("XDPC_ATTACH_HELPER"); spec != "" {
		attachAndWait(spec)
		return
	}
	l := testutil.NewLab(t, lab.Options{})
	ifindex, _, err := l.ClientLink()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLDetaches$")
	cmd.Env = append(os.Environ(), "XDPC_ATTACH_HELPER="+l.ClientNS+":"+strconv.Itoa(ifindex))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "attached\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if !xdpAttached(t, l.ClientNS) {
		t.Fatal("program not attached while the helper runs")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for xdpAttached(t, l.ClientNS) {
		if time.Now().After(deadline) {
			t.Fatal("XDP program still attached after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attachAndWait(spec string) {
	var ns string
	var ifindex int
	for i := len(spec) - 1; i >= 0; i-- {
		if spec[i] == ':' {
			ns, ifindex = spec[:i], atoi(spec[i+1:])
			break
		}
	}
	err := lab.Do(ns, func() error {
		p, err := bpf.Load(0)
		if err != nil {
			return err
		}
		_, err = p.Attach(ifindex, bpf.AttachNative)
		return err
	})
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("attached\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func xdpAttached(t *testing.T, ns string) bool {
	link, err := lab.LinkByName(ns, lab.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached
}
