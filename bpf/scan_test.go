package bpf_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

const xdpTX = 3

// scanCase is one family's pair: our address, the target, and its SYN
// template.
type scanCase struct {
	name string
	us   netip.Addr
	dst  netip.AddrPort
	path tcp.Path
	tpl  bpf.ScanTemplate
}

func scanCases() []scanCase {
	var out []scanCase
	for i, c := range []struct {
		us, dst string
	}{{"198.18.0.1", "198.18.0.2:8080"}, {"2001:2::1", "[2001:2::2]:8080"}} {
		us, dst := netip.MustParseAddr(c.us), netip.MustParseAddrPort(c.dst)
		p := tcp.Path{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2}, DstPort: dst.Port()}
		if us.Is6() {
			p.V6, p.Src6, p.Dst6 = true, us.As16(), dst.Addr().As16()
		} else {
			p.Src, p.Dst = us.As4(), dst.Addr().As4()
		}
		params := tcp.DefaultParams(1500, us.Is6())
		parts := tcp.NewSYNTemplate(&params, &p).Parts()
		out = append(out, scanCase{name: []string{"IPv4", "IPv6"}[i], us: us, dst: dst, path: p, tpl: bpf.ScanTemplate{
			SYNParts: parts, Mix: 0x0123456789abcdef + uint64(i), SlotBase: uint32(i) * 11, TSAdd: 777}})
	}
	return out
}

// generatorProgram is a loaded program whose port range is 40000-40010.
func generatorProgram(t *testing.T) *bpf.Program {
	t.Helper()
	testutil.RequirePrivileges(t)
	prog, err := bpf.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := prog.SetPorts(40000, 40010); err != nil {
		t.Fatal(err)
	}
	return prog
}

// The kernel's SYN generator stamps the pair's template as
// tcp.SYNTemplate.Stamp does: ports in turn through the range, the probe's
// ISN, TSval, IP ID or flow label, both checksums right (our parser checks
// them); and it counts what it sent.
func TestScanGenerator(t *testing.T) {
	prog := generatorProgram(t)
	for _, c := range scanCases() {
		t.Run(c.name, func(t *testing.T) {
			tpl := c.tpl
			tpl.Next = 9
			for i := 0; i < 4; i++ {
				f, next, err := prog.GenerateOnce(&tpl)
				if err != nil {
					t.Fatal(err)
				}
				var pk tcp.Packet
				if k := tcp.Parse(f, &pk); k != tcp.KindTCP {
					t.Fatalf("generated frame: %v %v", k, pk.Reason)
				}
				port := uint16(40000 + (9+i)%11)
				isn := bpf.ScanISN(tpl.Mix, port)
				if pk.Seg.Flags != tcp.FlagSYN || pk.SrcPort != port || pk.DstPort != 8080 || uint32(pk.Seg.Seq) != isn ||
					!pk.Seg.Opts.HasTS || pk.Seg.Opts.MSS != map[bool]uint16{false: 1460, true: 1440}[pk.V6] || next != tpl.Next+1 {
					t.Fatalf("probe %d: %+v next %d", i, pk, next)
				}
				if pk.V6 && tcp.IPv6(f[tcp.EthHdrLen:]).FlowLabel() != isn&0xfffff {
					t.Fatalf("flow label %#x, want %#x", tcp.IPv6(f[tcp.EthHdrLen:]).FlowLabel(), isn&0xfffff)
				}
				if !pk.V6 && tcp.IPv4(f[tcp.EthHdrLen:]).ID() != uint16(isn>>16) {
					t.Fatalf("IP ID %d", tcp.IPv4(f[tcp.EthHdrLen:]).ID())
				}
				tpl.Next = next
			}
		})
	}
	if sc, err := prog.ScanCounts(); err != nil || sc.Sent != 8 {
		t.Fatalf("counted %+v (%v), want 8 sent", sc, err)
	}
}

// The receive path with a SYN-only run on: a SYN-ACK to a probe is counted
// once and turned into the RST Linux sends for no socket; a second one is
// a duplicate (still reset); an RST to a probe is a refusal; an ICMP error
// quoting a probe is counted by type and code; a SYN-ACK whose ACK is not
// a probe's ISN+1, or with the run off, takes the normal path.
func TestScanAnswers(t *testing.T) {
	testutil.RequirePrivileges(t)
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
	must(prog.SetPorts(40000, 40010))
	cases := scanCases()
	for _, c := range cases {
		must(prog.AddAddr(c.us, false))
		must(prog.AddScanPair(c.us, c.dst, c.tpl.Mix, c.tpl.SlotBase))
	}
	reply := func(c scanCase, port uint16, flags tcp.Flags, ack tcp.Seq) []byte {
		p := tcp.Path{SrcMAC: c.path.DstMAC, DstMAC: c.path.SrcMAC, Src: c.path.Dst, Dst: c.path.Src, V6: c.path.V6, Src6: c.path.Dst6, Dst6: c.path.Src6,
			SrcPort: 8080, DstPort: port}
		params := tcp.DefaultParams(1500, c.path.V6)
		r := tcp.Reply{Flags: flags, Seq: 5000, Ack: ack, Window: 65160, TOS: 0x2b}
		if flags.Has(tcp.FlagSYN) {
			r.SYNOpts, r.MSS, r.TSVal, r.TSEcr = &params, 1400, 9, 10
		}
		b := make([]byte, tcp.MaxReplyLen)
		return b[:tcp.Build(b, &p, &r)]
	}
	// The run off: the normal path (no socket registered: the kernel's).
	if act, _, err := prog.RunFrame(reply(cases[0], 40003, tcp.FlagSYN|tcp.FlagACK, tcp.Seq(bpf.ScanISN(cases[0].tpl.Mix, 40003))+1)); err != nil || act != xdpPass {
		t.Fatalf("run off: action %d %v", act, err)
	}
	must(prog.SetScan(true))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			isn := tcp.Seq(bpf.ScanISN(c.tpl.Mix, 40003))
			for round := 0; round < 2; round++ {
				act, out, err := prog.RunFrame(reply(c, 40003, tcp.FlagSYN|tcp.FlagACK, isn+1))
				if err != nil || act != xdpTX {
					t.Fatalf("SYN-ACK: action %d %v", act, err)
				}
				var pk tcp.Packet
				if k := tcp.Parse(out, &pk); k != tcp.KindTCP || pk.Seg.Flags != tcp.FlagRST || pk.Seg.Seq != isn+1 || pk.Seg.Ack != 0 ||
					pk.SrcPort != 40003 || pk.DstPort != 8080 || pk.Seg.Window != 0 || pk.TOS != 0x28 || pk.Seg.PayloadLen != 0 {
					t.Fatalf("the RST: %v %+v", k, pk)
				}
				if pk.V6 && (pk.Src6 != c.us.As16()) || !pk.V6 && pk.Src != c.us.As4() {
					t.Fatalf("RST from %v", pk)
				}
				if !pk.V6 {
					ip := tcp.IPv4(out[tcp.EthHdrLen:])
					if ip.TTL() != 64 || ip.ID() != 0 || ip.FlagsFrag() != 0x4000 || len(out) != 54 {
						t.Fatalf("RST IP: ttl %d id %d flags %#x len %d", ip.TTL(), ip.ID(), ip.FlagsFrag(), len(out))
					}
				} else if ip := tcp.IPv6(out[tcp.EthHdrLen:]); ip.HopLimit() != 64 || len(out) != 74 {
					t.Fatalf("RST IPv6: hop limit %d len %d", ip.HopLimit(), len(out))
				}
			}
			if act, _, _ := prog.RunFrame(reply(c, 40004, tcp.FlagSYN|tcp.FlagACK, isn+1)); act == xdpTX {
				t.Fatal("a SYN-ACK acknowledging another port's ISN was taken")
			}
			isn5 := tcp.Seq(bpf.ScanISN(c.tpl.Mix, 40005))
			if act, _, _ := prog.RunFrame(reply(c, 40005, tcp.FlagRST|tcp.FlagACK, isn5+1)); act != xdpDrop {
				t.Fatalf("RST to a probe: action %d", act)
			}
			// An ICMP error quoting the probe of port 40006.
			syn := c.tpl
			syn.Next = 6
			f, _, err := prog.GenerateOnce(&syn)
			if err != nil {
				t.Fatal(err)
			}
			typ, code := uint8(3), uint8(13)
			if c.path.V6 {
				typ, code = 1, 4
			}
			if act, _, _ := prog.RunFrame(linktest.ICMPError(f, typ, code, 0)); act != xdpDrop {
				t.Fatalf("ICMP about a probe: action %d", act)
			}
		})
	}
	sc, err := prog.ScanCounts()
	if err != nil {
		t.Fatal(err)
	}
	icmp := map[bpf.ICMPKind]uint64{{V6: false, Type: 3, Code: 13}: 1, {V6: true, Type: 1, Code: 4}: 1}
	if sc.Established != 2 || sc.Duplicate != 2 || sc.Refused != 2 || len(sc.ICMP) != 2 || sc.ICMP[bpf.ICMPKind{Type: 3, Code: 13}] != 1 ||
		sc.ICMP[bpf.ICMPKind{V6: true, Type: 1, Code: 4}] != 1 {
		t.Fatalf("counts %+v, want 2 established, 2 duplicates, 2 refused, ICMP %v", sc, icmp)
	}
}

// Generate drives the kernel's generator through live-frame runs: n SYNs
// in one call, ports in turn from the pair's cursor; after a signal ends a
// call early, the cursor as the program left it; the kernel's refusal
// reported with the cursor unmoved; a template longer than the
// generator's frame refused before the kernel is asked, one of exactly
// its length taken. The kernel is a stand-in (bpf.LiveStandIn) that runs
// the program without live frames.
func TestGenerate(t *testing.T) {
	prog := generatorProgram(t)
	for _, c := range scanCases() {
		t.Run(c.name, func(t *testing.T) {
			k := bpf.NewLiveStandIn(t, prog, nil)
			tpl := c.tpl
			check := func(what string, next, want uint32, err error, sent int) {
				t.Helper()
				if err != nil || next != want || len(k.Frames) != sent || k.Calls != 1 {
					t.Fatalf("%s: next %d (%v) after %d calls, %d frames; want next %d, %d frames", what, next, err, k.Calls, len(k.Frames), want, sent)
				}
				for i, f := range k.Frames {
					var pk tcp.Packet
					port := uint16(40000 + (tpl.Next+uint32(i))%11)
					if tcp.Parse(f, &pk) != tcp.KindTCP || pk.Seg.Flags != tcp.FlagSYN || pk.SrcPort != port || uint32(pk.Seg.Seq) != bpf.ScanISN(tpl.Mix, port) {
						t.Fatalf("%s: probe %d: %+v, want a SYN from port %d", what, i, pk, port)
					}
				}
				tpl.Next, k.Calls, k.Frames = next, 0, nil
			}
			tpl.Next = 9
			next, err := prog.Generate(&tpl, 5)
			check("one call", next, 14, err, 5)
			k.Reps, k.Errs = []int{2}, []unix.Errno{unix.EINTR}
			next, err = prog.Generate(&tpl, 5)
			check("interrupted", next, 16, err, 2)
			k.Reps, k.Errs = []int{0}, []unix.Errno{unix.EPERM}
			if next, err := prog.Generate(&tpl, 5); !errors.Is(err, unix.EPERM) || next != 16 {
				t.Fatalf("refused: next %d (%v), want 16 and EPERM", next, err)
			}
			k.Reps, k.Errs, k.Calls = nil, nil, 0
			long := tpl
			long.Frame = append(bytes.Clone(tpl.Frame), make([]byte, bpf.GenFrameMax+1-len(tpl.Frame))...)
			if next, err := prog.Generate(&long, 1); err == nil || next != 16 || k.Calls != 0 {
				t.Fatalf("a %d-byte template: next %d (%v), %d calls", len(long.Frame), next, err, k.Calls)
			}
			long.Frame = long.Frame[:bpf.GenFrameMax]
			if _, err := prog.Generate(&long, 1); err != nil || k.Calls != 1 {
				t.Fatalf("a template of the generator's %d bytes: %v, %d calls", bpf.GenFrameMax, err, k.Calls)
			}
		})
	}
}
