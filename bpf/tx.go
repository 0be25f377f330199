package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Live-frame transmission (--xdp-tx): a copy-mode AF_XDP transmit makes a
// socket buffer per frame, and on a veth whose peer runs XDP the peer
// copies it again. Instead a worker copies its frames into its slots of
// the program's tx_slots map (memory-mapped: no syscall per frame) and
// runs the attached program once per batch with BPF_PROG_RUN in
// live-frame mode; each repetition turns a page of the kernel's pool into
// the next slot's frame and redirects it to the interface through a device
// map. Requests go to the attached program, not to one of their own: the
// kernel's XDP dispatcher already holds it, so a call costs microseconds
// where a program nobody attached costs two dispatcher rebuilds (about
// 20 ms) per call with more than one repetition.

// Sizes of the TX slots, as xdp.h defines them.
const (
	// TxSlots is how many frames a worker can queue before it must send.
	TxSlots = 256
	// TxFrameMax is the longest frame a slot holds.
	TxFrameMax = 2040
	txSlotSize = 2048
	txCursor   = 64
)

// request kinds and the ethertype of a request (xdp.h).
const (
	reqEtherType = 0x88B5
	reqSyngen    = 1
	reqTX        = 2
	reqRoom      = 64
	// reqLen leaves the Ethernet header's length behind the room, the
	// least a packet can be after the program moves its start.
	reqLen = reqRoom + 14
)

// request is a request of kind for worker: an Ethernet header with the
// request ethertype, then struct xdpc_req with this load's token, in the
// room the frame is made after.
func (p *Program) request(kind, worker uint32) [reqLen]byte {
	var r [reqLen]byte
	binary.BigEndian.PutUint16(r[12:], reqEtherType)
	binary.NativeEndian.PutUint64(r[14:], p.token)
	binary.NativeEndian.PutUint32(r[22:], kind)
	binary.NativeEndian.PutUint32(r[26:], worker)
	return r
}

// asAttached runs fn with the program taking loopback frames for requests
// (xdp.h), as it does once attached, also when it is not: tests make
// frames from requests without an interface.
func (p *Program) asAttached(fn func() (uint32, error)) (uint32, error) {
	if p.ifindex != 0 {
		return fn()
	}
	p.ifindex = -1 // no interface has it
	err := p.writeConfig()
	p.ifindex = 0
	if err != nil {
		return 0, err
	}
	ret, err := fn()
	return ret, errors.Join(err, p.writeConfig())
}

// SetTxDevice makes ifindex (in the calling thread's network namespace)
// the interface live-frame transmissions leave by.
func (p *Program) SetTxDevice(ifindex int) error {
	if err := p.objs.TxDev.Put(uint32(0), uint32(ifindex)); err != nil {
		return fmt.Errorf("bpf: TX device %d: %w", ifindex, err)
	}
	return nil
}

// TxQueue is one worker's live-frame transmission: Add copies frames into
// its slots, Send has the kernel send them. Owned by one goroutine.
type TxQueue struct {
	slots  []byte // this worker's TX slots
	cursor []byte // its cursor (struct xdpc_tx_cursor)
	n      int    // frames added since the last Send
	req    [reqLen]byte
	attr   progRunAttr
	// kernel makes the BPF_PROG_TEST_RUN call: progTestRun, or in tests
	// a stand-in that runs each repetition without live frames.
	kernel func(*progRunAttr) unix.Errno
}

// progRunAttr is union bpf_attr for BPF_PROG_TEST_RUN.
type progRunAttr struct {
	progFD, retval           uint32
	dataSizeIn, dataSizeOut  uint32
	dataIn, dataOut          uint64
	repeat, duration         uint32
	ctxSizeIn, ctxSizeOut    uint32
	ctxIn, ctxOut            uint64
	flags, cpu, batchSize, _ uint32
}

const bpfProgTestRun = 10 // BPF_PROG_TEST_RUN

// progTestRun runs the program attr names with BPF_PROG_TEST_RUN.
func progTestRun(attr *progRunAttr) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	return e
}

// txBatch is how many frames the kernel makes before it hands them to the
// interface: the kernel's default (NAPI's weight), which a veth peer's
// ring of 256 takes whole.
const txBatch = 64

// TxQueue returns worker's queue (0 <= worker < the workers Load was given
// TX slots for). SetTxDevice must have named the interface.
func (p *Program) TxQueue(worker int) (*TxQueue, error) {
	if worker < 0 || worker >= p.txWorkers {
		return nil, fmt.Errorf("bpf: TX worker %d: the program has TX slots for %d", worker, p.txWorkers)
	}
	if p.txMem[0] == nil {
		for i, m := range []struct {
			fd, size int
		}{{p.objs.TxSlots.FD(), p.txWorkers * TxSlots * txSlotSize}, {p.objs.TxCursors.FD(), maxQueues * txCursor}} {
			b, err := unix.Mmap(m.fd, 0, m.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				return nil, fmt.Errorf("bpf: map the TX slots: %w", err)
			}
			p.txMem[i] = b
		}
	}
	q := &TxQueue{slots: p.txMem[0][worker*TxSlots*txSlotSize : (worker+1)*TxSlots*txSlotSize],
		cursor: p.txMem[1][worker*txCursor : (worker+1)*txCursor], req: p.request(reqTX, uint32(worker)), kernel: progTestRun}
	q.attr = progRunAttr{progFD: uint32(p.objs.Xdpconnect.FD()), dataSizeIn: reqLen,
		flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, batchSize: txBatch}
	return q, nil
}

// Len is the number of frames added since the last Send.
func (q *TxQueue) Len() int { return q.n }

// Add copies frame into the next slot; false when the slots are full
// (Send first) or the frame is longer than TxFrameMax.
func (q *TxQueue) Add(frame []byte) bool {
	if q.n == TxSlots || len(frame) > TxFrameMax {
		return false
	}
	s := q.slots[q.n*txSlotSize : (q.n+1)*txSlotSize]
	binary.NativeEndian.PutUint32(s, uint32(len(frame)))
	copy(s[8:], frame)
	q.n++
	return true
}

// Send has the kernel send the frames added since the last Send, in
// order. A signal may end a call early: the cursor says how far it got,
// and the next call goes on from there.
func (q *TxQueue) Send() error {
	n := q.n
	q.n = 0
	binary.NativeEndian.PutUint32(q.cursor, 0)
	for stuck := 0; ; {
		done := int(binary.NativeEndian.Uint32(q.cursor))
		if done >= n {
			return nil
		}
		q.attr.dataIn = uint64(uintptr(unsafe.Pointer(&q.req[0])))
		q.attr.repeat = uint32(n - done)
		e := q.kernel(&q.attr)
		runtime.KeepAlive(q)
		if e != 0 && e != unix.EINTR {
			return fmt.Errorf("bpf: live-frame transmit: %w", e)
		}
		// A repetition on a page reused within the call sends nothing
		// (xdp.h): the next call goes on from the cursor.
		if int(binary.NativeEndian.Uint32(q.cursor)) > done {
			stuck = 0
		} else if stuck++; stuck == 4 {
			return errors.New("bpf: live-frame transmit: the program takes no frame from the TX slots")
		}
	}
}

// LiveFrames says whether the kernel runs XDP programs in live-frame mode
// (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18), which
// --xdp-tx and --xdp-syn send with: nil, or an error wrapping
// ebpf.ErrNotSupported and the kernel's errno (some kernels build it out
// or refuse it with EPERM even to root). The probe runs once.
func LiveFrames() error {
	liveOnce.Do(func() { liveErr = probeLiveFrames() })
	return liveErr
}

var (
	liveOnce sync.Once
	liveErr  error
)

func probeLiveFrames() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpDrop)), asm.Return()}})
	if err != nil {
		return fmt.Errorf("bpf: live frames: probe program: %w", err)
	}
	defer p.Close()
	_, err = p.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	if err != nil {
		return fmt.Errorf("%w: this kernel refuses BPF_PROG_RUN in live-frame mode (%w)", ebpf.ErrNotSupported, err)
	}
	return nil
}

// xdpDrop is XDP_DROP: the probe's frame goes nowhere.
const xdpDrop = 1
