package bpf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Counter indexes the program's per-CPU counters.
type Counter uint32

// Counters, as enum xdpc_counter in xdp.h.
const (
	RedirectTCP        = Counter(xdpXdpcCounterXDPC_CNT_REDIRECT_TCP)
	RedirectICMP       = Counter(xdpXdpcCounterXDPC_CNT_REDIRECT_ICMP)
	RedirectARP        = Counter(xdpXdpcCounterXDPC_CNT_REDIRECT_ARP)
	RedirectND         = Counter(xdpXdpcCounterXDPC_CNT_REDIRECT_ND)
	PassOtherEtherType = Counter(xdpXdpcCounterXDPC_CNT_PASS_OTHER_ETHERTYPE)
	PassNotLocal       = Counter(xdpXdpcCounterXDPC_CNT_PASS_NOT_LOCAL)
	PassOtherPort      = Counter(xdpXdpcCounterXDPC_CNT_PASS_OTHER_PORT)
	PassOtherProto     = Counter(xdpXdpcCounterXDPC_CNT_PASS_OTHER_PROTO)
	PassMalformed      = Counter(xdpXdpcCounterXDPC_CNT_PASS_MALFORMED)
	PassNoSocket       = Counter(xdpXdpcCounterXDPC_CNT_PASS_NO_SOCKET)
	DropMalformed      = Counter(xdpXdpcCounterXDPC_CNT_DROP_MALFORMED)
	DropNoSocket       = Counter(xdpXdpcCounterXDPC_CNT_DROP_NO_SOCKET)
	DropScanAnswer     = Counter(xdpXdpcCounterXDPC_CNT_DROP_SCAN_ANSWER)
	TxScanRST          = Counter(xdpXdpcCounterXDPC_CNT_TX_SCAN_RST)
	// StampFailed counts redirected TCP segments the program could not
	// stamp with their arrival time (no metadata area): not a decision of
	// its own, the segment is also counted as RedirectTCP.
	StampFailed = Counter(xdpXdpcCounterXDPC_CNT_STAMP_FAILED)
	// The outcomes of SYN-only probes the kernel made (scan.go).
	ScanSent        = Counter(xdpXdpcCounterXDPC_CNT_SCAN_SENT)
	ScanEstablished = Counter(xdpXdpcCounterXDPC_CNT_SCAN_ESTABLISHED)
	ScanRefused     = Counter(xdpXdpcCounterXDPC_CNT_SCAN_REFUSED)
	ScanDuplicate   = Counter(xdpXdpcCounterXDPC_CNT_SCAN_DUPLICATE)
	// Live-frame transmission (--xdp-tx, tx.go): frames sent, and
	// requests that found no frame to send.
	TxLive       = Counter(xdpXdpcCounterXDPC_CNT_TX_LIVE)
	TxLiveFailed = Counter(xdpXdpcCounterXDPC_CNT_TX_LIVE_FAILED)
	NumCounters  = int(xdpXdpcCounterXDPC_CNT_MAX)
	// NumDecisions is the number of counters that are decisions (one per
	// frame): those below it.
	NumDecisions = int(StampFailed)
)

var counterNames = [NumCounters]string{"redirect_tcp", "redirect_icmp", "redirect_arp", "redirect_nd",
	"pass_other_ethertype", "pass_not_local", "pass_other_port", "pass_other_proto", "pass_malformed",
	"pass_no_socket", "drop_malformed", "drop_no_socket", "drop_scan_answer", "tx_scan_rst", "stamp_failed",
	"scan_sent", "scan_established", "scan_refused", "scan_duplicate", "tx_live", "tx_live_failed"}

// String is the counter's name, as used in metric labels.
func (c Counter) String() string {
	if int(c) < NumCounters {
		return counterNames[c]
	}
	return "unknown"
}

// Action reports what a counter means: "redirect", "pass" or "drop".
func (c Counter) Action() string {
	switch {
	case c <= RedirectND:
		return "redirect"
	case c <= PassNoSocket:
		return "pass"
	case c == TxScanRST || c == TxLive:
		return "tx"
	}
	return "drop"
}

// Address flags (xdp.h).
const addrDedicated = 1

// Program is the loaded XDP program with its maps.
type Program struct {
	objs xdpObjects
	link link.Link
	// The port range and the SYN-only flag, written together (config).
	portLo, portHi uint16
	scan           bool
	token          uint64 // requests from user space carry it (xdp.h)
	ifindex        int    // where it is attached
	txWorkers      int
	txMem          [2][]byte // tx_slots and tx_cursors, mapped
	// live runs the attached program in live-frame mode (Generate): the
	// program's own Run, or in tests a stand-in that runs each repetition
	// without live frames, which kernels that refuse live frames allow.
	live func(*ebpf.RunOptions) (uint32, error)
	// NativeErr is why native mode was refused when Attach in auto mode
	// fell back to generic.
	NativeErr error
	// NoStamps says the kernel refuses bpf_xdp_adjust_meta to XDP
	// programs (seen on a 6.18 build), so no frame carries an arrival
	// stamp: the worker times replies when its loop finds them.
	NoStamps bool
}

// privErr names what is missing when the kernel refuses.
func privErr(op string, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("bpf: %s: %w", op, err)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("bpf: %s: %w (needs CAP_BPF and CAP_NET_ADMIN, or root)", op, err)
	}
	return fmt.Errorf("bpf: %s: %w", op, err)
}

// Load loads the program and its maps into the kernel without attaching
// it, with TX slots for txWorkers workers (live-frame transmission, 0:
// none).
func Load(txWorkers int) (*Program, error) {
	if txWorkers < 0 || txWorkers > maxQueues {
		return nil, fmt.Errorf("bpf: %d TX workers: at most %d", txWorkers, maxQueues)
	}
	spec, err := loadXdp()
	if err != nil {
		return nil, err
	}
	spec.Maps["tx_slots"].MaxEntries = uint32(max(txWorkers, 1) * TxSlots)
	p := &Program{txWorkers: txWorkers}
	if features.HaveProgramHelper(ebpf.XDP, asm.FnXdpAdjustMeta) != nil {
		for _, prog := range spec.Programs {
			failHelper(prog.Instructions, asm.FnXdpAdjustMeta)
		}
		p.NoStamps = true
	}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, privErr("load XDP program", err)
	}
	p.live = p.objs.Xdpconnect.Run
	// The requests' token (xdp.h): random, never 0.
	var b [8]byte
	for p.token == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			p.objs.Close()
			return nil, err
		}
		p.token = binary.NativeEndian.Uint64(b[:])
	}
	if err := p.writeConfig(); err != nil {
		p.objs.Close()
		return nil, err
	}
	return p, nil
}

// failHelper replaces every call of helper fn with the error the helper
// returns when it cannot act (-EOPNOTSUPP in r0): the program's own
// failure path then runs, as on a driver without room for metadata. A
// call and a move are one instruction each, so no jump changes.
func failHelper(insns asm.Instructions, fn asm.BuiltinFunc) {
	for i, ins := range insns {
		if ins.IsBuiltinCall() && ins.Constant == int64(fn) {
			insns[i] = asm.Mov.Imm(asm.R0, -int32(unix.EOPNOTSUPP)).WithMetadata(ins.Metadata)
		}
	}
}

// maxQueues is XDPC_MAX_QUEUES: the queues (and TX workers) the program
// serves.
const maxQueues = 64

// AttachMode says how the program is attached to an interface.
type AttachMode int

// Attach modes.
const (
	// AttachAuto tries native (driver) mode and falls back to generic mode
	// when the driver has no native XDP, as libxdp does.
	AttachAuto AttachMode = iota
	// AttachNative requires native (driver) mode.
	AttachNative
	// AttachGeneric uses generic (SKB) mode: any device, slower.
	AttachGeneric
)

// String is the mode's flag value.
func (m AttachMode) String() string { return [...]string{"auto", "native", "generic"}[m] }

// ParseAttachMode parses "auto", "native" or "generic".
func ParseAttachMode(s string) (AttachMode, error) {
	for m := AttachAuto; m <= AttachGeneric; m++ {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("XDP attach mode %q: want auto, native or generic", s)
}

// Attach attaches the program to ifindex (in the calling thread's network
// namespace) through a bpf_link and returns the mode it is attached in:
// native or generic. In auto mode a driver without native XDP support
// (EOPNOTSUPP: macvlan, ipvlan, tun, bridges, some NIC drivers) gets the
// program in generic mode.
func (p *Program) Attach(ifindex int, mode AttachMode) (AttachMode, error) {
	used := mode
	if mode == AttachAuto {
		used = AttachNative
	}
	l, err := p.attach(ifindex, used)
	// EOPNOTSUPP: no native XDP in the driver. ENOSPC: a veth whose peer
	// has more TX queues than it has RX queues (veth_xdp_set). ERANGE: an
	// MTU above what the driver's XDP takes (a veth's is about 3.5k).
	if err != nil && mode == AttachAuto && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.ERANGE)) {
		p.NativeErr = err
		used = AttachGeneric
		l, err = p.attach(ifindex, used)
	}
	if err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return used, fmt.Errorf("attach XDP to interface %d: %w (the interface already has an XDP program: another xdpconnect running?)", ifindex, err)
		}
		if used == AttachNative && errors.Is(err, unix.EOPNOTSUPP) {
			return used, fmt.Errorf("attach XDP to interface %d in native mode: %w (the driver has no native XDP; use --xdp-attach generic or auto)", ifindex, err)
		}
		if used == AttachNative && errors.Is(err, unix.ERANGE) {
			return used, fmt.Errorf("attach XDP to interface %d in native mode: %w (the interface's MTU is above the driver's XDP limit: a smaller MTU, or generic or auto attach)", ifindex, err)
		}
		if used == AttachNative && errors.Is(err, unix.ENOSPC) {
			return used, fmt.Errorf("attach XDP to interface %d in native mode: %w (on a veth: its peer has more TX queues than it has RX queues; 'ethtool -L PEER tx N' on the peer, or --xdp-attach generic or auto)", ifindex, err)
		}
		return used, privErr(fmt.Sprintf("attach XDP to interface %d in %s mode", ifindex, used), err)
	}
	p.link = l
	p.ifindex = ifindex
	return used, p.writeConfig()
}

func (p *Program) attach(ifindex int, m AttachMode) (link.Link, error) {
	flags := link.XDPDriverMode
	if m == AttachGeneric {
		flags = link.XDPGenericMode
	}
	return link.AttachXDP(link.XDPOptions{Program: p.objs.Xdpconnect, Interface: ifindex, Flags: flags})
}

// SetPorts sets our source port range.
func (p *Program) SetPorts(lo, hi uint16) error {
	p.portLo, p.portHi = lo, hi
	return p.writeConfig()
}

// AddAddr adds one of our source addresses. dedicated says the kernel does
// not own it, so its ARP/ND is steered to us.
func (p *Program) AddAddr(a netip.Addr, dedicated bool) error {
	var f uint32
	if dedicated {
		f = addrDedicated
	}
	if a.Is4() {
		return p.objs.Addrs4.Put(a.As4(), f)
	}
	return p.objs.Addrs6.Put(a.As16(), f)
}

// RegisterXSK puts an AF_XDP socket in the XSKMAP slot of its queue.
func (p *Program) RegisterXSK(queue, fd int) error {
	if err := p.objs.Xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("bpf: register socket for queue %d: %w", queue, err)
	}
	return nil
}

// Counters returns each counter summed over CPUs.
func (p *Program) Counters() ([NumCounters]uint64, error) {
	var out [NumCounters]uint64
	var per []uint64
	for i := 0; i < NumCounters; i++ {
		if err := p.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return out, err
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// Run runs the program once on frame with BPF_PROG_TEST_RUN on the given RX
// queue and returns the XDP action (XDP_DROP=1, XDP_PASS=2, XDP_REDIRECT=4).
func (p *Program) Run(frame []byte) (uint32, error) {
	ret, err := p.objs.Xdpconnect.Run(&ebpf.RunOptions{Data: frame})
	return ret, err
}

// Close detaches (if attached) and releases the program and maps.
func (p *Program) Close() error {
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
		p.link = nil
	}
	for i, m := range p.txMem {
		if m != nil {
			errs = append(errs, unix.Munmap(m))
			p.txMem[i] = nil
		}
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}
