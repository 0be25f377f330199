package bpf

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// LiveStandIn stands in for a kernel that runs the program in live-frame
// mode, on kernels that refuse it: each repetition of a call is one run of
// the program without live frames, as attached, and the frame it makes is
// what live mode would have sent. Calls follow a script, so that tests can
// have the kernel stop early, as a signal or a page reused within a call
// makes it.
type LiveStandIn struct {
	t *testing.T
	p *Program
	// Frames are the frames made, in order.
	Frames [][]byte
	// Calls counts the calls into the kernel.
	Calls int
	// Reps[i] is how many repetitions call i makes at most (-1: all it is
	// asked for); Errs[i] the errno it ends with. Calls past the script
	// make all and succeed.
	Reps []int
	Errs []unix.Errno
}

// NewLiveStandIn puts a stand-in in the place of the kernel's live-frame
// runs of p (Generate) and of q (Send, if q is not nil); p takes loopback
// frames for requests, as once attached.
func NewLiveStandIn(t *testing.T, p *Program, q *TxQueue) *LiveStandIn {
	t.Helper()
	k := &LiveStandIn{t: t, p: p}
	p.ifindex = -1
	if err := p.writeConfig(); err != nil {
		t.Fatal(err)
	}
	p.live = func(o *ebpf.RunOptions) (uint32, error) {
		if o.Flags != unix.BPF_F_TEST_XDP_LIVE_FRAMES || o.BatchSize != txBatch {
			t.Fatalf("live run with flags %#x, batch %d", o.Flags, o.BatchSize)
		}
		if e := k.run(o.Data, o.Repeat); e != 0 {
			return 0, e
		}
		return 0, nil
	}
	if q != nil {
		q.kernel = func(a *progRunAttr) unix.Errno {
			if a.progFD != uint32(p.objs.Xdpconnect.FD()) || a.flags != unix.BPF_F_TEST_XDP_LIVE_FRAMES ||
				a.batchSize != txBatch || a.dataIn != uint64(uintptr(unsafe.Pointer(&q.req[0]))) || a.dataSizeIn != reqLen {
				t.Fatalf("BPF_PROG_TEST_RUN with %+v", *a)
			}
			return k.run(q.req[:], a.repeat)
		}
	}
	return k
}

// run makes the script's repetitions of a call asked for repeat.
func (k *LiveStandIn) run(data []byte, repeat uint32) unix.Errno {
	k.t.Helper()
	i := k.Calls
	if k.Calls++; k.Calls > 32 {
		k.t.Fatalf("%d calls into the kernel: the caller does not give up", k.Calls)
	}
	n, e := int(repeat), unix.Errno(0)
	if i < len(k.Reps) {
		if k.Reps[i] >= 0 {
			n = min(n, k.Reps[i])
		}
		e = k.Errs[i]
	}
	for range n {
		opts := ebpf.RunOptions{Data: data, DataOut: make([]byte, 4096)}
		if _, err := k.p.objs.Xdpconnect.Run(&opts); err != nil {
			k.t.Fatal(err)
		}
		k.Frames = append(k.Frames, opts.DataOut)
	}
	return e
}

// GenFrameMax is the longest SYN template the kernel's generator takes.
const GenFrameMax = len(xdpXdpcGen{}.Frame)
