package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

// SYN-only runs whose SYNs the kernel makes: the program's generator
// (syngen in xdp.c, a request to the attached program, xdp.h) stamps each
// SYN from a pair's template in the kernel and sends it through the TX
// device map, and the receive path counts each probe's first
// answer (SYN-ACK, RST or ICMP error) and answers a SYN-ACK with the RST
// itself. User space only drives the generator and reads the counts.

// ScanISN is the ISN of a SYN-only probe from source port port of the pair
// whose keyed hash is mix; the program computes the same.
func ScanISN(mix uint64, port uint16) uint32 {
	x := mix ^ uint64(port)*0x9E3779B97F4A7C15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return uint32(x)
}

// ScanSlots is how many (pair, port) slots the program can track.
const ScanSlots = 64 << 20

// SetScan turns the counting of SYN-only answers on or off, keeping the
// port range.
func (p *Program) SetScan(on bool) error {
	p.scan = on
	return p.writeConfig()
}

func (p *Program) writeConfig() error {
	var s uint32
	if p.scan {
		s = 1
	}
	return p.objs.Config.Put(uint32(0), xdpXdpcConfig{PortLo: p.portLo, PortHi: p.portHi, Scan: s, Ifindex: uint32(p.ifindex), Token: p.token})
}

// AddScanPair registers a pair of a SYN-only run: our address, the target
// and its port, the pair's keyed hash (its probes' ISNs follow from it) and
// its first slot (pair index x ports).
func (p *Program) AddScanPair(ours netip.Addr, peer netip.AddrPort, mix uint64, slotBase uint32) error {
	// IPv4 as the program keys it, ::ffff:a.b.c.d (As16); the port as it
	// is on the wire.
	k := xdpXdpcPairKey{Ours: ours.As16(), Peer: peer.Addr().As16(), PeerPort: netOrder(peer.Port())}
	return p.objs.ScanPairs.Put(k, xdpXdpcPairVal{Mix: mix, SlotBase: slotBase})
}

// netOrder is v as a uint16 whose memory holds v in network byte order.
func netOrder(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// ScanTemplate is a pair's SYN as tcp.SYNTemplate built it, with what the
// generator needs to stamp it (tcp.SYNTemplate.Parts).
type ScanTemplate struct {
	// SYNParts is the pair's SYN as tcp builds it for the engine (TSOff 0:
	// no timestamp option): the program stamps it as SYNTemplate.Stamp.
	tcp.SYNParts
	Mix      uint64
	SlotBase uint32
	TSAdd    uint32 // the pair's timestamp offset
	Next     uint32 // probes of the pair so far
}

// Generate sends n SYNs of the pair t describes through the interface
// SetTxDevice named and returns how far the pair's port cursor moved (the
// next Next). It runs on the calling thread's CPU, in any namespace.
func (p *Program) Generate(t *ScanTemplate, n uint32) (uint32, error) {
	if len(t.Frame) > len(xdpXdpcGen{}.Frame) {
		return t.Next, fmt.Errorf("bpf: a %d-byte SYN template exceeds the generator's %d", len(t.Frame), len(xdpXdpcGen{}.Frame))
	}
	g := t.gen()
	if err := p.objs.ScanGen.Put(uint32(0), g); err != nil {
		return t.Next, err
	}
	req := p.request(reqSyngen, 0)
	_, err := p.live(&ebpf.RunOptions{Data: req[:], Repeat: n, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: txBatch})
	if err != nil && !errors.Is(err, unix.EINTR) {
		return t.Next, fmt.Errorf("bpf: generate SYNs: %w", err)
	}
	if err := p.objs.ScanGen.Lookup(uint32(0), g); err != nil {
		return t.Next, err
	}
	return g.Next, nil
}

// GenerateOnce runs the generator once, without sending, and returns the
// SYN it made and the pair's next cursor (for tests): no interface is
// needed.
func (p *Program) GenerateOnce(t *ScanTemplate) ([]byte, uint32, error) {
	g := t.gen()
	if err := p.objs.ScanGen.Put(uint32(0), g); err != nil {
		return nil, 0, err
	}
	// From the request alone: the SYN must come whole from the template
	// (a page of the pool comes back holding whatever the frame became on
	// its trip).
	req := p.request(reqSyngen, 0)
	opts := ebpf.RunOptions{Data: req[:], DataOut: make([]byte, len(t.Frame)+256)}
	ret, err := p.asAttached(func() (uint32, error) { return p.objs.Xdpconnect.Run(&opts) })
	if err != nil {
		return nil, 0, err
	}
	// XDP_REDIRECT to the interface, or XDP_DROP where none was set.
	if ret != 4 && ret != 1 {
		return nil, ret, fmt.Errorf("bpf: the generator did not send (XDP action %d)", ret)
	}
	if err := p.objs.ScanGen.Lookup(uint32(0), g); err != nil {
		return nil, 0, err
	}
	return opts.DataOut, g.Next, nil
}

// gen is t as the program's scan_gen map holds it.
func (t *ScanTemplate) gen() *xdpXdpcGen {
	g := &xdpXdpcGen{Mix: t.Mix, Next: t.Next, SlotBase: t.SlotBase, IpOff: uint32(t.IPOff), TcpOff: uint32(t.TCPOff),
		TsOff: uint32(t.TSOff), IpSum: t.IPSum, TcpSum: t.TCPSum, TsAdd: t.TSAdd, FlagsWord: t.FlagsWord}
	if t.V6 {
		g.V6 = 1
	}
	copy(g.Frame[:], t.Frame)
	g.Len = uint32(len(t.Frame))
	return g
}

// ScanCounts are a SYN-only run's outcomes as the program counted them.
type ScanCounts struct {
	Sent, Established, Refused, Duplicate uint64
	// ICMP counts first answers that were ICMP errors, by IPv6, type and
	// code.
	ICMP map[ICMPKind]uint64
}

// ICMPKind is an ICMP (V6 false) or ICMPv6 error's type and code.
type ICMPKind struct {
	V6         bool
	Type, Code uint8
}

// ScanCounts reads the counts.
func (p *Program) ScanCounts() (ScanCounts, error) {
	c, err := p.Counters()
	if err != nil {
		return ScanCounts{}, err
	}
	sc := ScanCounts{Sent: c[ScanSent], Established: c[ScanEstablished], Refused: c[ScanRefused], Duplicate: c[ScanDuplicate],
		ICMP: map[ICMPKind]uint64{}}
	var per []uint64
	for i := uint32(0); i < 512; i++ {
		if err := p.objs.ScanIcmp.Lookup(i, &per); err != nil {
			return sc, err
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		if n > 0 {
			sc.ICMP[ICMPKind{V6: i >= 256, Type: uint8(i % 256 / 16), Code: uint8(i % 16)}] = n
		}
	}
	return sc, nil
}

// RunFrame runs the receive program on frame and returns the action and
// the frame as the program left it (for tests).
func (p *Program) RunFrame(frame []byte) (uint32, []byte, error) {
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := p.objs.Xdpconnect.Run(&opts)
	if err != nil {
		return 0, nil, err
	}
	return ret, opts.DataOut, nil
}
