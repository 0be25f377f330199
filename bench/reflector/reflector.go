// Package reflector is an XDP SYN-ACK reflector for benchmarks: it answers
// SYNs statelessly with XDP_TX so a client can be measured without a Linux
// listener as the bottleneck. It also has a drop mode (a sink) and a pass
// mode (for the receiving veth of XDP_TX frames, which veth drops unless an
// XDP program is attached there).
package reflector

import (
	"fmt"

	"github.com/cilium/ebpf/link"
)

// Mode selects what the program does.
type Mode uint32

// Modes.
const (
	Reflect Mode = 0
	Drop    Mode = 1
	Pass    Mode = 2
	// Count counts the SYNs to the port (SYNs) and drops every frame.
	Count Mode = 3
	// HTTP reflects SYNs and answers each request (a segment with data)
	// with a canned HTTP/1.0 response of 40 bytes and FIN, each bare FIN
	// with its ACK: request mode's ceiling. HTTP/1.0 says the connection
	// closes after it, so keep-alive clients (wrk, h2load) open one per
	// request; 40 bytes are less than any request, so the program only
	// ever shrinks a frame (veth may have no tailroom to grow one).
	HTTP Mode = 4
)

// Reflector is the loaded and attached program.
type Reflector struct {
	objs reflObjects
	l    link.Link
}

// Attach loads the program and attaches it to ifindex (calling thread's
// namespace) in driver mode. port 0 reflects SYNs to any port.
func Attach(ifindex int, mode Mode, port uint16) (*Reflector, error) {
	r := &Reflector{}
	if err := loadReflObjects(&r.objs, nil); err != nil {
		return nil, fmt.Errorf("reflector: load: %w", err)
	}
	if err := r.SetMode(mode, port); err != nil {
		r.objs.Close()
		return nil, err
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: r.objs.Reflector, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		r.objs.Close()
		return nil, fmt.Errorf("reflector: attach to ifindex %d: %w", ifindex, err)
	}
	r.l = l
	return r, nil
}

// SetMode changes the mode and port.
func (r *Reflector) SetMode(m Mode, port uint16) error {
	return r.objs.Rconfig.Put(uint32(0), reflReflConfig{Mode: uint32(m), Port: port})
}

// SetLoss makes the reflector drop pct percent of SYNs at random.
func (r *Reflector) SetLoss(m Mode, port uint16, pct uint16) error {
	return r.objs.Rconfig.Put(uint32(0), reflReflConfig{Mode: uint32(m), Port: port, DropPct: pct})
}

// Counters returns SYN-ACKs sent, frames dropped, frames passed.
func (r *Reflector) Counters() (sent, dropped, passed uint64, err error) {
	c, err := r.counters()
	return c[0], c[1], c[2], err
}

// SYNs is the number of SYNs seen on the reflected port, whatever their
// options: the neutral count for SYN-only tools.
func (r *Reflector) SYNs() (uint64, error) {
	c, err := r.counters()
	return c[3], err
}

// Responses is the number of canned responses sent (HTTP mode).
func (r *Reflector) Responses() (uint64, error) {
	c, err := r.counters()
	return c[4], err
}

func (r *Reflector) counters() ([6]uint64, error) {
	var out [6]uint64
	for i := range out {
		var per []uint64
		if err := r.objs.Rcounters.Lookup(uint32(i), &per); err != nil {
			return out, err
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// Close detaches and unloads.
func (r *Reflector) Close() error {
	if r.l != nil {
		r.l.Close()
	}
	return r.objs.Close()
}
