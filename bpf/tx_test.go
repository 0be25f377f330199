package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"golang.org/x/sys/unix"
)

// txProgram is a program with TX slots for one worker, taking loopback
// frames for requests as once attached, and that worker's queue.
func txProgram(t *testing.T) (*Program, *TxQueue) {
	t.Helper()
	testutil.RequirePrivileges(t)
	p, err := Load(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.TxQueue(1); err == nil {
		t.Fatal("a queue for a worker without slots")
	}
	q, err := p.TxQueue(0)
	if err != nil {
		t.Fatal(err)
	}
	return p, q
}

// counter reads one of the program's counters.
func counter(t *testing.T, p *Program, c Counter) uint64 {
	t.Helper()
	v, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return v[c]
}

// A TX request turns its page into the next slot's frame, byte for byte,
// in the order the slots were written; a request past them, one with
// another load's token, and (unattached) one that is not on loopback make
// nothing.
func TestTxRequests(t *testing.T) {
	p, q := txProgram(t)
	frames := [][]byte{bytes.Repeat([]byte{0xab}, 60), bytes.Repeat([]byte{0xcd}, 1514)}
	for _, f := range frames {
		if !q.Add(f) {
			t.Fatal("Add refused a frame")
		}
	}
	if q.Add(make([]byte, TxFrameMax+1)) {
		t.Fatal("Add took a frame longer than a slot")
	}
	binary.NativeEndian.PutUint32(q.cursor, 0)
	run := func(req []byte) ([]byte, uint32) {
		t.Helper()
		out := make([]byte, 4096)
		opts := ebpf.RunOptions{Data: req, DataOut: out}
		ret, err := p.asAttached(func() (uint32, error) { return p.objs.Xdpconnect.Run(&opts) })
		if err != nil {
			t.Fatal(err)
		}
		return opts.DataOut, ret
	}
	req := p.request(reqTX, 0)
	for i, f := range frames {
		out, ret := run(req[:])
		// XDP_DROP: the device map names no interface in this test.
		if ret != 1 || !bytes.Equal(out, f) {
			t.Fatalf("request %d: action %d, %d bytes %x..., want frame %d", i, ret, len(out), out[:min(8, len(out))], i)
		}
	}
	if counter(t, p, TxLive) != 2 {
		t.Fatalf("tx_live %d, want 2", counter(t, p, TxLive))
	}
	bad := req
	bad[14] ^= 1 // the token
	for _, r := range [][]byte{req[:], bad[:]} {
		if _, ret := run(r); ret != 1 {
			t.Fatalf("action %d, want XDP_DROP", ret)
		}
	}
	if counter(t, p, TxLiveFailed) != 2 || counter(t, p, TxLive) != 2 {
		t.Fatalf("tx_live_failed %d, tx_live %d", counter(t, p, TxLiveFailed), counter(t, p, TxLive))
	}
	// Unattached, a loopback frame is the wire's: a request is just an
	// unknown ethertype.
	if ret, err := p.Run(req[:]); err != nil || ret != 2 || counter(t, p, PassOtherEtherType) != 1 {
		t.Fatalf("unattached: action %d (%v), pass_other_ethertype %d", ret, err, counter(t, p, PassOtherEtherType))
	}
	for i := 0; i < TxSlots; i++ {
		q.n = i
		if !q.Add(frames[0]) {
			t.Fatalf("Add refused slot %d", i)
		}
	}
	if q.Add(frames[0]) {
		t.Fatal("Add took more frames than the slots")
	}
	q.n = 0
	if !q.Add(make([]byte, TxFrameMax)) {
		t.Fatal("Add refused a frame of exactly TxFrameMax bytes")
	}
	// Unattached the program takes no request: Send gives up with an
	// error instead of calling the kernel forever.
	if err := q.Send(); err == nil || q.Len() != 0 {
		t.Fatalf("Send to a program that takes no request: %v, %d left", err, q.Len())
	}
}

// Sending a batch is one system call on memory set up once: nothing is
// allocated per frame or per batch.
func TestTxSendAllocatesNothing(t *testing.T) {
	if err := LiveFrames(); err != nil {
		t.Skip(err) // TestTxRequests still runs the refusals
	}
	p, q := txProgram(t)
	p.ifindex = -1 // as attached elsewhere: loopback frames are requests
	if err := p.writeConfig(); err != nil {
		t.Fatal(err)
	}
	f := bytes.Repeat([]byte{0x5a}, 74)
	allocs := testing.AllocsPerRun(50, func() {
		q.Add(f)
		if err := q.Send(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch", allocs)
	}
	if n := counter(t, p, TxLive); n != 51 || q.Len() != 0 {
		t.Fatalf("tx_live %d after 51 batches of one, %d left", n, q.Len())
	}
}

// Each worker's queue has its own slots and cursor, side by side in the
// shared maps: worker 1's begin where worker 0's end.
func TestTxQueuesPerWorker(t *testing.T) {
	testutil.RequirePrivileges(t)
	p, err := Load(2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q0, err := p.TxQueue(0)
	if err != nil {
		t.Fatal(err)
	}
	q1, err := p.TxQueue(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		a, b     []byte
		size     int
		mem      []byte
		atOffset int
	}{
		{"slots", q0.slots, q1.slots, TxSlots * txSlotSize, p.txMem[0], TxSlots * txSlotSize},
		{"cursor", q0.cursor, q1.cursor, txCursor, p.txMem[1], txCursor},
	} {
		if len(c.a) != c.size || len(c.b) != c.size || &c.a[0] != &c.mem[0] || &c.b[0] != &c.mem[c.atOffset] {
			t.Fatalf("%s: %d and %d bytes, worker 1's not right after worker 0's", c.name, len(c.a), len(c.b))
		}
	}
	if _, err := Load(maxQueues + 1); err == nil {
		t.Fatalf("%d TX workers accepted", maxQueues+1)
	}
	full, err := Load(maxQueues)
	if err != nil {
		t.Fatalf("%d TX workers (the most): %v", maxQueues, err)
	}
	full.Close()
}

// LiveFrames says what the kernel says: nil where BPF_PROG_RUN takes live
// frames, an error wrapping ErrNotSupported where it refuses them, asked
// here with a program of the test's own (XDP_PASS, two frames).
func TestLiveFramesProbe(t *testing.T) {
	testutil.RequirePrivileges(t)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, direct := p.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 2, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	got := LiveFrames()
	if (direct == nil) != (got == nil) || got != nil && !errors.Is(got, ebpf.ErrNotSupported) {
		t.Fatalf("LiveFrames %v; the kernel asked directly: %v", got, direct)
	}
}

// Send goes on from the cursor until every frame is out, in order and
// once each: after a signal ends a call early (EINTR) and after calls that
// send fewer than asked (a page reused within the call). It gives up after
// four calls in a row that send nothing, and reports any other refusal
// with the kernel's errno. The kernel is a stand-in (LiveStandIn) that runs
// the program without live frames, so this runs where live frames are
// refused.
func TestTxSendResumes(t *testing.T) {
	p, q := txProgram(t)
	frames := make([][]byte, 5)
	for i := range frames {
		frames[i] = bytes.Repeat([]byte{byte(0x10 + i)}, 60+i)
	}
	for _, c := range []struct {
		name   string
		reps   []int
		errs   []unix.Errno
		calls  int
		sent   int
		errMsg string
	}{
		{"in one call", nil, nil, 1, 5, ""},
		{"interrupted", []int{2, 0, -1}, []unix.Errno{unix.EINTR, unix.EINTR, 0}, 3, 5, ""},
		{"pages reused", []int{1, 0, 0, 0, 1, 0, 0, 0, -1}, make([]unix.Errno, 9), 9, 5, ""},
		{"nothing sent", []int{1, 0, 0, 0, 0}, make([]unix.Errno, 5), 5, 1, "takes no frame"},
		{"refused", []int{1}, []unix.Errno{unix.EPERM}, 1, 1, unix.EPERM.Error()},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := NewLiveStandIn(t, p, q)
			k.Reps, k.Errs = c.reps, c.errs
			for _, f := range frames {
				q.Add(f)
			}
			err := q.Send()
			if c.errMsg == "" && err != nil || c.errMsg != "" && (err == nil || !strings.Contains(err.Error(), c.errMsg)) {
				t.Fatalf("Send: %v, want %q", err, c.errMsg)
			}
			if c.errMsg == unix.EPERM.Error() && !errors.Is(err, unix.EPERM) {
				t.Fatalf("%v does not wrap the kernel's errno", err)
			}
			if k.Calls != c.calls || len(k.Frames) != c.sent || q.Len() != 0 {
				t.Fatalf("%d calls, %d frames sent, %d left; want %d calls, %d frames", k.Calls, len(k.Frames), q.Len(), c.calls, c.sent)
			}
			for i, f := range k.Frames {
				if !bytes.Equal(f, frames[i]) {
					t.Fatalf("frame %d sent is %x..., want frame %d", i, f[:min(4, len(f))], i)
				}
			}
		})
	}
}
