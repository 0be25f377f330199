// Package xdptx is an AF_XDP socket that sends through the XDP program
// (live frames, --xdp-tx): a fastpath.Link whose Transmit copies frames
// into the worker's TX slots of the program and whose Kick runs the
// program once for the batch. Receiving stays on the socket.
package xdptx

import (
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Link is an AF_XDP socket whose transmissions go through the XDP
// program instead (--xdp-tx): Transmit copies each frame into the
// worker's TX slots and the frame's buffer is free again at Kick, which
// sends the batch.
type Link struct {
	*xsk.Socket
	q    *bpf.TxQueue
	sent []uint64 // buffers copied out, back to the socket at Kick
	err  error
}

// New is x sending through q, the worker's TX slots.
func New(x *xsk.Socket, q *bpf.TxQueue) *Link {
	return &Link{Socket: x, q: q, sent: make([]uint64, 0, bpf.TxSlots)}
}

// Transmit copies descs into the TX slots, sending a full set on the way.
func (l *Link) Transmit(descs []xsk.Desc) int {
	umem := l.UMEM()
	for i, d := range descs {
		f := umem[d.Addr : d.Addr+uint64(d.Len)]
		if !l.q.Add(f) {
			if l.q.Len() == 0 || l.send() != nil || !l.q.Add(f) {
				return i
			}
		}
		l.sent = append(l.sent, d.Addr)
	}
	return len(descs)
}

// Kick sends what Transmit copied.
func (l *Link) Kick() error {
	if err := l.send(); err != nil {
		return err
	}
	return l.Socket.Kick()
}

// send has the kernel send the slots and frees their buffers.
func (l *Link) send() error {
	if l.err != nil {
		return l.err
	}
	if l.q.Len() > 0 {
		if err := l.q.Send(); err != nil {
			l.err = err
		}
	}
	l.Socket.Free(l.sent)
	l.sent = l.sent[:0]
	return l.err
}

// Err is the first error of the socket or of a live transmission.
func (l *Link) Err() error {
	if l.err != nil {
		return l.err
	}
	return l.Socket.Err()
}
