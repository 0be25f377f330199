package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/cpu"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
	"golang.org/x/sys/unix"
)

// frame64 is a 64-byte TCP frame from the client to the server's port 8080,
// back-to-front of what our XDP program takes (port 40000) on the client.
func frame64(cmac []byte) []byte {
	f := make([]byte, tcp.MaxReplyLen)
	p := &tcp.Path{SrcMAC: [6]byte(cmac), DstMAC: [6]byte{2, 0, 0, 0, 0, 2}, Src: lab.ClientAddr.As4(), Dst: lab.ServerAddrDirect.As4(), SrcPort: 40000, DstPort: 8080}
	n := tcp.Build(f, p, &tcp.Reply{Flags: tcp.FlagACK, Seq: 1, Ack: 1})
	return f[:max(n, 64)][:64]
}

// txOurs transmits for d with package xsk and returns completed frames/s.
func txOurs(ifindex int, ns string, frame []byte, d time.Duration) (float64, error) {
	var s *xsk.Socket
	if err := lab.Do(ns, func() (err error) {
		s, err = xsk.Open(ifindex, 0, xsk.Options{NumFrames: 4096, RingSize: 2048})
		return
	}); err != nil {
		return 0, err
	}
	defer s.Close()
	addrs := make([]uint64, 2048)
	n := s.Alloc(addrs) // write every TX frame once; sending only sets lengths
	for _, a := range addrs[:n] {
		copy(s.Buf(a), frame)
	}
	s.Free(addrs[:n])
	_ = cpu.Pin(0)
	defer runtime.UnlockOSThread()
	start := time.Now()
	blast(s, len(frame), func() bool { return time.Since(start) < d })
	el := time.Since(start).Seconds()
	st, _ := s.Stats()
	return float64(st.TxCompleted) / el, nil
}

// blast transmits frames of length n, already written in every TX frame,
// in batches of 64 while more() holds.
func blast(s *xsk.Socket, n int, more func() bool) {
	batch := make([]uint64, 64)
	descs := make([]xsk.Desc, 64)
	for more() {
		k := s.Alloc(batch)
		for i := 0; i < k; i++ {
			descs[i] = xsk.Desc{Addr: batch[i], Len: uint32(n)}
		}
		q := s.Transmit(descs[:k])
		s.Free(batch[q:k])
		_ = s.Kick()
	}
}

// txAsavie is the same loop with github.com/asavie/xdp v0.3.3.
func txAsavie(ifindex int, ns string, frame []byte, d time.Duration) (float64, error) {
	var s *asavie.Socket
	opts := &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048, FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}
	if err := lab.Do(ns, func() (err error) { s, err = asavie.NewSocket(ifindex, 0, opts); return }); err != nil {
		return 0, err
	}
	for _, dsc := range s.GetDescs(4096) {
		copy(s.GetFrame(dsc), frame)
	}
	_ = cpu.Pin(0)
	defer runtime.UnlockOSThread()
	start := time.Now()
	var done uint64
	for time.Since(start) < d {
		descs := s.GetDescs(64)
		for i := range descs {
			descs[i].Len = uint32(len(frame))
		}
		s.Transmit(descs)
		if c := s.NumCompleted(); c > 0 {
			s.Complete(c)
			done += uint64(c)
		}
	}
	return float64(done) / time.Since(start).Seconds(), nil
}

// sender floods frames from the server veth with package xsk on CPU 1 until
// stop is set.
func sender(b *bed, frame []byte, stop *atomic.Bool, started chan<- error) {
	var s *xsk.Socket
	err := lab.Do(b.l.ServerNS, func() (err error) {
		idx, err := netIfindex(lab.ServerIf)
		if err != nil {
			return err
		}
		s, err = xsk.Open(idx, 0, xsk.Options{NumFrames: 4096, RingSize: 2048})
		return err
	})
	started <- err
	if err != nil {
		return
	}
	defer s.Close()
	_ = cpu.Pin(1)
	// Server -> client: the same frame with directions swapped.
	f := append([]byte(nil), frame...)
	copy(f[0:6], frame[6:12])
	copy(f[6:12], frame[0:6])
	copy(f[26:30], frame[30:34])
	copy(f[30:34], frame[26:30])
	f[34], f[35], f[36], f[37] = frame[36], frame[37], frame[34], frame[35]
	tcp.TCP(f[34:54]).SetChecksum4([4]byte(f[26:30]), [4]byte(f[30:34]))
	addrs := make([]uint64, 2048)
	n := s.Alloc(addrs)
	for _, a := range addrs[:n] {
		copy(s.Buf(a), f)
	}
	s.Free(addrs[:n])
	blast(s, len(f), func() bool { return !stop.Load() })
}

// rxChild receives for d behind our XDP program on the client veth with
// package xsk (ours) or asavie/xdp, and returns frames/s. The sender runs
// in the parent.
func rxChild(ns string, ifindex int, d time.Duration, ours bool) (float64, error) {
	var prog *bpf.Program
	var mine *xsk.Socket
	var theirs *asavie.Socket
	err := lab.Do(ns, func() (err error) {
		if prog, err = bpf.Load(0); err != nil {
			return err
		}
		if err := prog.SetPorts(40000, 40000); err != nil {
			return err
		}
		if err := prog.AddAddr(lab.ClientAddr, false); err != nil {
			return err
		}
		fd := 0
		if ours {
			// The same 4096 frames as asavie's socket, nearly all for RX.
			if mine, err = xsk.Open(ifindex, 0, xsk.Options{NumFrames: 4096, TxFrames: 64, RingSize: 2048}); err != nil {
				return err
			}
			fd = mine.FD()
		} else {
			theirs, err = asavie.NewSocket(ifindex, 0, &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048,
				FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048})
			if err != nil {
				return err
			}
			fd = theirs.FD()
		}
		if err := prog.RegisterXSK(0, fd); err != nil {
			return err
		}
		_, err = prog.Attach(ifindex, bpf.AttachNative)
		return err
	})
	if err != nil {
		return 0, err
	}
	_ = cpu.Pin(0)
	var got uint64
	start := time.Now()
	if ours {
		// Take what the ring holds, as asavie's Receive(NumReceived()) does.
		descs := make([]xsk.Desc, 2048)
		for time.Since(start) < d {
			n := mine.Receive(descs)
			mine.Recycle(descs[:n])
			got += uint64(n)
		}
	} else {
		theirs.Fill(theirs.GetDescs(theirs.NumFreeFillSlots()))
		for time.Since(start) < d {
			if n := theirs.NumReceived(); n > 0 {
				got += uint64(len(theirs.Receive(n)))
				theirs.Fill(theirs.GetDescs(theirs.NumFreeFillSlots()))
			}
		}
	}
	// The process exits right after: that frees asavie's socket, whose
	// Close leaves the ring mappings (and so the bound queue) behind.
	return float64(got) / time.Since(start).Seconds(), nil
}

// XSKChild is one measurement of the xsk scenario, run in a child process
// (`xdpconnect bench-xsk`): lib is "ours" or "asavie", mode "tx" or "rx".
func XSKChild(lib, mode, ns string, ifindex int, d time.Duration) (float64, error) {
	ours := lib == "ours"
	if mode == "rx" {
		return rxChild(ns, ifindex, d, ours)
	}
	var mac []byte
	if err := lab.Do(ns, func() (err error) { mac, err = netInterface(ifindex); return err }); err != nil {
		return 0, err
	}
	if ours {
		return txOurs(ifindex, ns, frame64(mac), d)
	}
	return txAsavie(ifindex, ns, frame64(mac), d)
}

// xskCompare runs TX and RX with both ring layers in one run, each
// measurement in a child process pinned to CPU 0, so a library that leaks
// its socket (asavie/xdp) cannot affect the next measurement.
func (o *Options) xskCompare() ([]Row, error) {
	b, err := newBed(false, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	// A sink on the server veth so transmitted frames cost the kernel
	// nothing; removed for RX, where the sender transmits from there.
	var sink *reflector.Reflector
	err = lab.Do(b.l.ServerNS, func() error {
		idx, err := netIfindex(lab.ServerIf)
		if err != nil {
			return err
		}
		sink, err = reflector.Attach(idx, reflector.Drop, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	child := func(lib, mode string) (float64, error) { return o.xskChild(b, lib, mode) }
	rows := []Row{
		{Scenario: "xsk", Tool: "xdpconnect xsk/ TX", Target: "veth, copy mode, 64 B", Workers: 1, Unit: "frames/s"},
		{Scenario: "xsk", Tool: "asavie/xdp v0.3.3 TX", Target: "veth, copy mode, 64 B", Workers: 1, Unit: "frames/s"},
		{Scenario: "xsk", Tool: "xdpconnect xsk/ RX", Target: "veth, copy mode, 64 B", Workers: 1, Unit: "frames/s"},
		{Scenario: "xsk", Tool: "asavie/xdp v0.3.3 RX", Target: "veth, copy mode, 64 B", Workers: 1, Unit: "frames/s"},
	}
	for i := 0; i < o.Runs; i++ {
		a, err := child("ours", "tx")
		if err != nil {
			return nil, err
		}
		z, err := child("asavie", "tx")
		if err != nil {
			return nil, err
		}
		rows[0].Runs, rows[1].Runs = append(rows[0].Runs, a), append(rows[1].Runs, z)
		o.logf("  TX run %d: xsk/ %.0f pps, asavie %.0f pps (%.2fx)", i+1, a, z, a/z)
	}
	sink.Close()
	_, cmac, _ := b.l.ClientLink()
	frame := frame64(cmac)
	for i := 0; i < o.Runs; i++ {
		var vals [2]float64
		for k, lib := range []string{"ours", "asavie"} {
			var stop atomic.Bool
			started := make(chan error, 1)
			go sender(b, frame, &stop, started)
			if err := <-started; err != nil {
				return nil, err
			}
			v, err := child(lib, "rx")
			stop.Store(true)
			if err != nil {
				return nil, err
			}
			vals[k] = v
			time.Sleep(200 * time.Millisecond) // the sender's socket closes
		}
		rows[2].Runs, rows[3].Runs = append(rows[2].Runs, vals[0]), append(rows[3].Runs, vals[1])
		o.logf("  RX run %d: xsk/ %.0f pps, asavie %.0f pps (%.2fx)", i+1, vals[0], vals[1], vals[0]/vals[1])
	}
	for i := range rows {
		summarize(&rows[i])
	}
	rows[1].Note = fmt.Sprintf("xsk/ TX is %.2fx", rows[0].Median/rows[1].Median)
	rows[3].Note = fmt.Sprintf("xsk/ RX is %.2fx (both bounded by the one-core sender)", rows[2].Median/rows[3].Median)
	return rows, nil
}

// xskChild measures one socket library in a child process pinned to CPU 0:
// frames/s transmitted (mode "tx") or received ("rx") on the bed's client
// veth.
func (o *Options) xskChild(b *bed, lib, mode string) (float64, error) {
	var out []byte
	var err error
	// The kernel releases the previous process's socket (and its queue)
	// asynchronously: retry a bind that finds it busy.
	for try := 0; try < 50; try++ {
		out, err = exec.Command("taskset", "-c", "0", o.Self, "bench-xsk", "--lib", lib, "--mode", mode, "--netns", b.l.ClientNS,
			"--ifindex", strconv.Itoa(b.ifindex), "--duration", o.Duration.String()).Output()
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || !strings.Contains(string(ee.Stderr), "busy") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("bench-xsk %s %s: %v: %s", lib, mode, err, ee.Stderr)
		}
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

// ceiling sets one worker's handshake rate against the reflector beside
// what its socket can transmit at all, in the same bed and runs: an
// rst-closed handshake costs 3 TX frames (SYN, ACK, RST), so the TX rate
// into a drop sink, divided by 3, bounds it.
func (o *Options) ceiling() ([]Row, error) {
	b, err := newBed(true, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	hs := Row{Scenario: "ceiling", Tool: "xdpconnect", Target: "xdp-reflector", Workers: 1, Unit: "handshakes/s"}
	hsLive := Row{Scenario: "ceiling", Tool: "xdpconnect --xdp-tx", Target: "xdp-reflector", Workers: 1, Unit: "handshakes/s"}
	tx := Row{Scenario: "ceiling", Tool: "xsk/ TX frames/s ÷ 3", Target: "same veth, drop sink", Workers: 1, Unit: "handshakes/s"}
	live := Row{Scenario: "ceiling", Tool: "XDP live frames (BPF_PROG_RUN) ÷ 3", Target: "same veth, drop sink", Workers: 1, Unit: "handshakes/s",
		Note: "the kernel's TX path without an skb per frame"}
	_, cmac, err := b.l.ClientLink()
	if err != nil {
		return nil, err
	}
	withLive := liveFrames(o)
	for i := 0; i < o.Runs; i++ {
		if err := b.refl.SetMode(reflector.Reflect, 8080); err != nil {
			return nil, err
		}
		r, err := o.runXDPConnect(b, 1, "--duration", o.Duration.String())
		if err != nil {
			return nil, err
		}
		var rl *report.Report
		if withLive {
			if rl, err = o.runXDPConnect(b, 1, "--duration", o.Duration.String(), "--xdp-tx"); err != nil {
				return nil, err
			}
		}
		if err := b.refl.SetMode(reflector.Drop, 0); err != nil {
			return nil, err
		}
		v, err := o.xskChild(b, "ours", "tx")
		if err != nil {
			return nil, err
		}
		hs.Runs, tx.Runs = append(hs.Runs, r.CPS), append(tx.Runs, v/3)
		o.logf("  run %d: %.0f handshakes/s, TX %.0f frames/s: %.2f of the ceiling", i+1, r.CPS, v, r.CPS/(v/3))
		if withLive {
			lv, err := liveTX(b, frame64(cmac), o.Duration)
			if err != nil {
				return nil, err
			}
			live.Runs, hsLive.Runs = append(live.Runs, lv/3), append(hsLive.Runs, rl.CPS)
			o.logf("  run %d: --xdp-tx %.0f handshakes/s: %.2f of the ceiling; XDP live frames %.0f/s", i+1, rl.CPS, rl.CPS/(v/3), lv)
		}
	}
	summarize(&hs)
	summarize(&tx)
	hs.Note = fmt.Sprintf("%.2f of the TX ceiling (medians)", hs.Median/tx.Median)
	if !withLive {
		return []Row{hs, tx}, nil
	}
	summarize(&hsLive)
	summarize(&live)
	hsLive.Note = fmt.Sprintf("%.2f of the xsk TX ceiling (medians): its frames leave from XDP", hsLive.Median/tx.Median)
	return []Row{hs, hsLive, tx, live}, nil
}

// liveTX is what the client veth transmits into the bed's sink when an
// XDP program makes the frames itself: BPF_PROG_RUN in live-frame mode,
// returning XDP_TX, on CPU 0 in the client namespace. It is the kernel's
// TX path without an skb per frame, the one a SYN generator in XDP would
// use.
func liveTX(b *bed, frame []byte, d time.Duration) (float64, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3 /* XDP_TX */), asm.Return()}})
	if err != nil {
		return 0, err
	}
	defer prog.Close()
	// struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
	type xdpMD struct{ Data, DataEnd, DataMeta, Ingress, RxQueue, Egress uint32 }
	ctx := xdpMD{DataEnd: uint32(len(frame)), Ingress: uint32(b.ifindex)}
	// Counted where they arrive: the sink's drops.
	_, before, _, err := b.refl.Counters()
	if err != nil {
		return 0, err
	}
	var el time.Duration
	err = lab.Do(b.l.ClientNS, func() error {
		if err := cpu.Pin(0); err != nil {
			return err
		}
		start := time.Now()
		for el = 0; el < d; el = time.Since(start) {
			const batch = 1 << 18
			if _, err := prog.Run(&ebpf.RunOptions{Data: frame, Repeat: batch, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, Context: ctx}); err != nil {
				return fmt.Errorf("BPF_PROG_RUN live frames: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	_, after, _, err := b.refl.Counters()
	return float64(after-before) / el.Seconds(), err
}
