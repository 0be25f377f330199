package main

import (
	be "encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The differential test of established-state behaviour: the scripted peer
// (peer_test.go) completes a handshake with the kernel's connect() and
// then with xdpconnect (held connection), sends each the same forged
// segments, and the answers must match. The kernel is the oracle: a change
// on either side shows here.

// answer is a client segment as the comparison sees it: numbers relative
// to the ISNs, the timestamp echo exactly (the peer chose the values it
// can echo), nothing random.
type answer struct {
	flags   tcp.Flags
	seq     int64 // from the client's ISN
	ack     int64 // from the peer's ISN (5000)
	window  uint16
	ts      bool
	tsecr   uint32
	sack    string // SACK blocks from the peer's ISN
	payload int
}

func (a answer) String() string {
	s := fmt.Sprintf("%v seq +%d ack +%d win %d", a.flags, a.seq, a.ack, a.window)
	if a.ts {
		s += fmt.Sprintf(" TSecr %d", a.tsecr)
	}
	if a.sack != "" {
		s += " SACK " + a.sack
	}
	if a.payload > 0 {
		s += fmt.Sprintf(" %d B", a.payload)
	}
	return s
}

// answerOf is pk (whose frame is f) as an answer.
func (p *peer) answerOf(pk *tcp.Packet, f []byte) answer {
	a := answer{flags: pk.Seg.Flags, seq: int64(pk.Seg.Seq - p.syn.Seg.Seq), ack: int64(pk.Seg.Ack - 5000), window: pk.Seg.Window,
		ts: pk.Seg.Opts.HasTS, tsecr: pk.Seg.Opts.TSEcr, payload: pk.Seg.PayloadLen}
	il := tcp.IPv6HdrLen
	if ip := tcp.IPv4(f[tcp.EthHdrLen:]); ip.Version() == 4 {
		il = ip.HeaderLen()
	}
	th := tcp.TCP(f[tcp.EthHdrLen+il:])
	opts := th[tcp.TCPHdrLen:th.DataOffset()]
	var blocks []string
	for i := 0; i+1 < len(opts); {
		switch {
		case opts[i] == tcp.OptNOP:
			i++
		case opts[i] == tcp.OptEOL || opts[i+1] < 2:
			i = len(opts)
		default:
			if opts[i] == tcp.OptSACK {
				for j := i + 2; j+8 <= i+int(opts[i+1]) && j+8 <= len(opts); j += 8 {
					l, r := be.BigEndian.Uint32(opts[j:]), be.BigEndian.Uint32(opts[j+4:])
					blocks = append(blocks, fmt.Sprintf("[+%d,+%d)", l-5000, r-5000))
				}
			}
			i += int(opts[i+1])
		}
	}
	a.sack = strings.Join(blocks, " ")
	return a
}

// answers collects what the client sends within d.
func (p *peer) answers(d time.Duration) []answer {
	var out []answer
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pk := p.next(time.Until(deadline))
		if pk == nil {
			break
		}
		out = append(out, p.answerOf(pk, p.last))
	}
	return out
}

// runKernel plays script against the kernel's connect() from the client
// namespace; the connection is aborted after it.
func (p *peer) runKernel(script func(p *peer)) {
	p.t.Helper()
	done := make(chan error, 1)
	hold := make(chan struct{})
	go func() {
		done <- lab.Do(p.l.ClientNS, func() error {
			c, err := (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp", p.server().String())
			if err != nil {
				return err
			}
			<-hold
			_ = c.(*net.TCPConn).SetLinger(0)
			return c.Close()
		})
	}()
	first := p.next(3 * time.Second)
	if first == nil || first.Seg.Flags&^(tcp.FlagECE|tcp.FlagCWR) != tcp.FlagSYN {
		close(hold)
		p.t.Fatalf("no SYN from the kernel captured: %+v", first)
	}
	p.syn = *first
	script(p)
	close(hold)
	if err := <-done; err != nil {
		p.t.Fatalf("kernel client: %v", err)
	}
}

// established is the peer's side of the handshake; it returns once the
// client's ACK is in.
func (p *peer) established() {
	p.t.Helper()
	p.send(p.synAck(p.syn.Seg.Seq+1, p.syn.Seg.Opts.TSVal), 0)
	ack := p.expect("handshake ACK", 2*time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagACK && pk.Seg.Ack == 5001 })
	p.win = uint32(ack.Seg.Window) << p.syn.Seg.Opts.WScale
}

// seg is a segment from the peer in the established connection.
func (p *peer) seg(flags tcp.Flags, seq tcp.Seq, tsval uint32) tcp.Reply {
	return tcp.Reply{Flags: flags, Seq: seq, Ack: p.syn.Seg.Seq + 1, Window: 502, TS: true, TSVal: tsval, TSEcr: p.syn.Seg.Opts.TSVal}
}

// differentialCases are the stimuli: each sends forged segments into an
// established connection (the peer's SYN-ACK had TSval 777) and returns
// what the client answered, segment by segment.
var differentialCases = []struct {
	name   string
	rule   string
	script func(p *peer) [][]answer
	// open replaces the handshake (established) when set.
	open bool
}{
	{"simultaneous open, then a crossed SYN-ACK with a newer timestamp", "Y8", func(p *peer) [][]answer {
		params := tcp.DefaultParams(1500, false)
		p.send(tcp.Reply{Flags: tcp.FlagSYN, Seq: 5000, Window: 65535, SYNOpts: &params, MSS: 1460, TSVal: 777}, 0)
		synAck := p.answers(300 * time.Millisecond)
		p.send(tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 5000, Ack: p.syn.Seg.Seq + 1, Window: 65535, SYNOpts: &params, MSS: 1460,
			TSVal: 790, TSEcr: p.syn.Seg.Opts.TSVal}, 0)
		return [][]answer{synAck, p.answers(300 * time.Millisecond)}
	}, true},
	{"in-order data", "E1", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 800), 1)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"data with a stale timestamp (PAWS)", "E2", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 700), 1)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"out-of-order data", "E1", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5101, 800), 10)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"duplicate data", "E5", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 800), 1)
		first := p.answers(300 * time.Millisecond)
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 810), 1)
		return [][]answer{first, p.answers(300 * time.Millisecond)}
	}, false},
	{"data across RCV.NXT", "E5", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 800), 1)
		first := p.answers(300 * time.Millisecond)
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 810), 10)
		return [][]answer{first, p.answers(300 * time.Millisecond)}
	}, false},
	{"keepalive probe with a newer timestamp", "E5", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK, 5000, 800), 0)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"RST in the window, not at RCV.NXT", "E3", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagRST, 5011, 800), 0)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"RST at the window's edge, and one past it", "E3", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagRST, 5001+tcp.Seq(p.win), 800), 0)
		at := p.answers(300 * time.Millisecond)
		time.Sleep(300 * time.Millisecond) // past the 500 ms rate limit
		p.send(p.seg(tcp.FlagRST, 5001+tcp.Seq(p.win)+1, 800), 0)
		return [][]answer{at, p.answers(300 * time.Millisecond)}
	}, false},
	{"data past the window", "E3", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagACK|tcp.FlagPSH, 5001+tcp.Seq(p.win)+1, 800), 10)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"an old pure ACK after data", "E3", func(p *peer) [][]answer {
		r := p.seg(tcp.FlagACK|tcp.FlagPSH, 5001, 800)
		p.send(r, 1)
		first := p.answers(300 * time.Millisecond)
		p.send(p.seg(tcp.FlagACK, 5000, 810), 0) // an old ACK with a newer timestamp
		return [][]answer{first, p.answers(300 * time.Millisecond)}
	}, false},
	{"ACK of data never sent", "E3", func(p *peer) [][]answer {
		r := p.seg(tcp.FlagACK, 5001, 800)
		r.Ack += 100
		p.send(r, 0)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
	{"SYN in ESTABLISHED", "H3", func(p *peer) [][]answer {
		p.send(p.seg(tcp.FlagSYN, 7000, 800), 0)
		return [][]answer{p.answers(300 * time.Millisecond)}
	}, false},
}

func TestDifferentialEstablished(t *testing.T) {
	testutil.RequirePrivileges(t)
	var rows []string
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		for _, tc := range differentialCases {
			t.Run(fam+"/"+strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				rows = append(rows, differential(t, v6, tc.name+" ("+tc.rule+", "+fam+")", tc.open, tc.script))
			})
		}
	}
	t.Logf("\n| case | Linux | xdpconnect | match |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// differential plays script against the kernel's client and against
// xdpconnect (a held connection), and fails when their answers differ; it
// returns the table row.
func differential(t *testing.T, v6 bool, name string, open bool, script func(p *peer) [][]answer) string {
	t.Helper()
	play := func(p *peer) [][]answer {
		if !open {
			p.established()
		}
		return script(p)
	}
	var linux, ours [][]answer
	newPeerOf(t, v6).runKernel(func(p *peer) { linux = play(p) })
	r := newPeerOf(t, v6).run(func(p *peer) { ours = play(p) }, func(o *runOpts) {
		o.plan.Close, o.plan.HoldFor = fastpath.CloseHold, 1500*time.Millisecond
	})
	if r.Established != 1 {
		t.Fatalf("xdpconnect did not establish: %+v", r)
	}
	l, x := fmt.Sprint(linux), fmt.Sprint(ours)
	if l != x {
		t.Errorf("%s: Linux answered %s, xdpconnect %s", name, l, x)
	}
	return fmt.Sprintf("| %s | %s | %s | %v |", name, l, x, l == x)
}

// synShape is what a SYN must share with the kernel's: flags, window, the
// option layout (TSval masked, it is clock and key), and the IP fields
// Linux sets (IPv4: DF, TTL, TOS; IPv6: traffic class, hop limit, a flow
// label set).
func synShape(pk *tcp.Packet, f []byte) string {
	var ip string
	il := tcp.IPv6HdrLen
	if v4 := tcp.IPv4(f[tcp.EthHdrLen:]); v4.Version() == 4 {
		il = v4.HeaderLen()
		ip = fmt.Sprintf("IPv4 flags %#x ttl %d tos %d", v4.FlagsFrag(), v4.TTL(), v4.TOS())
	} else {
		v6 := tcp.IPv6(f[tcp.EthHdrLen:])
		ip = fmt.Sprintf("IPv6 tc %d hlim %d label set %v", be.BigEndian.Uint32(v6)>>20&0xff, v6.HopLimit(), v6.FlowLabel() != 0)
	}
	th := tcp.TCP(f[tcp.EthHdrLen+il:])
	opts := append([]byte(nil), th.Options()...)
	for i := 0; i+1 < len(opts) && opts[i] != tcp.OptEOL; {
		if opts[i] == tcp.OptNOP {
			i++
			continue
		}
		if opts[i] == tcp.OptTimestamp && i+10 <= len(opts) {
			clear(opts[i+2 : i+6])
		}
		i += max(int(opts[i+1]), 2)
	}
	return fmt.Sprintf("%s, %v win %d, options % x", ip, pk.Seg.Flags, pk.Seg.Window, opts)
}

// Differential, the SYN and its fate (V2-V5 for IPv6, S1-S9 and C2 for
// IPv4): the kernel's connect() and xdpconnect in the same namespace send
// SYNs of the same shape, retransmit it after 1 s with the same changes
// (the same sequence number; IPv6: a new flow label), and report the same
// errno for the same forged ICMP error.
func TestDifferentialSYNAndICMP(t *testing.T) {
	testutil.RequirePrivileges(t)
	var rows []string
	row := func(name, l, x string) {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %v |", name, l, x, l == x))
		if l != x {
			t.Errorf("%s: Linux %s, xdpconnect %s", name, l, x)
		}
	}
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		// The SYN, its retransmission, and an RST|ACK that ends the attempt.
		synScript := func(out *string) func(p *peer) {
			return func(p *peer) {
				first := synShape(&p.syn, p.last)
				label := labelOf(p.last)
				re := p.expect("retransmitted SYN", 2*time.Second, isSYN)
				*out = fmt.Sprintf("%s; retransmission: same seq %v, new label %v", first, re.Seg.Seq == p.syn.Seg.Seq, labelOf(p.last) != label)
				p.send(tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Ack: p.syn.Seg.Seq + 1}, 0)
			}
		}
		var l, x string
		lerr := kernelDial(newPeerOf(t, v6), synScript(&l))
		r := newPeerOf(t, v6).run(synScript(&x), nil)
		row("SYN ("+fam+")", l+" → "+errnoName(lerr), x+" → "+failedAs(r))
		// The path MTU shrinks during SYN-SENT: frag-needed at 1400
		// (IPv4, C5) or Packet Too Big at 1280 (IPv6, V6); what MSS does
		// the retransmitted SYN announce?
		var lm, xm string
		mtuScript := func(out *string) func(p *peer) {
			return func(p *peer) {
				typ, code, mtu := uint8(3), uint8(4), uint32(1400)
				if p.v6 {
					typ, code, mtu = 2, 0, 1280
				}
				if err := p.raw.Send(linktest.ICMPError(p.last, typ, code, mtu)); err != nil {
					p.t.Fatal(err)
				}
				re := p.expect("retransmitted SYN", 2*time.Second, isSYN)
				*out = fmt.Sprintf("retransmitted SYN announces MSS %d", re.Seg.Opts.MSS)
				p.send(tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Ack: p.syn.Seg.Seq + 1}, 0)
			}
		}
		lerr = kernelDial(newPeerOf(t, v6), mtuScript(&lm))
		r = newPeerOf(t, v6).run(mtuScript(&xm), nil)
		row("path MTU lowered in SYN-SENT ("+fam+")", lm+" → "+errnoName(lerr), xm+" → "+failedAs(r))
		// Simultaneous open, then an RST in SYN-RECEIVED (Y8).
		simRST := func(p *peer) {
			params := tcp.DefaultParams(1500, p.v6)
			p.send(tcp.Reply{Flags: tcp.FlagSYN, Seq: 9000, Window: 65535, SYNOpts: &params, MSS: params.MSS, TSVal: 55}, 0)
			p.expect("SYN-ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagSYN|tcp.FlagACK })
			p.send(tcp.Reply{Flags: tcp.FlagRST, Seq: 9001}, 0)
		}
		lerr = kernelDial(newPeerOf(t, v6), simRST)
		r = newPeerOf(t, v6).run(simRST, nil)
		row("simultaneous open, then RST in SYN-RECEIVED ("+fam+")", errnoName(lerr), failedAs(r))
		codes := [][2]uint8{{3, 1}, {3, 3}, {3, 13}, {11, 0}, {12, 0}}
		if v6 {
			codes = [][2]uint8{{1, 0}, {1, 1}, {1, 3}, {1, 4}, {3, 0}, {4, 0}}
		}
		for _, c := range codes {
			icmp := func(p *peer) { p.send6or4ICMP(c[0], c[1]) }
			lerr := kernelDial(newPeerOf(t, v6), icmp)
			r := newPeerOf(t, v6).run(icmp, nil)
			row(fmt.Sprintf("ICMP %d/%d in SYN-SENT (%s)", c[0], c[1], fam), errnoName(lerr), failedAs(r))
		}
	}
	t.Logf("\n| case | Linux | xdpconnect | match |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// labelOf is an IPv6 frame's flow label (0 for IPv4).
func labelOf(f []byte) uint32 {
	if tcp.IPv4(f[tcp.EthHdrLen:]).Version() == 4 {
		return 0
	}
	return tcp.IPv6(f[tcp.EthHdrLen:]).FlowLabel()
}

// send6or4ICMP sends the ICMP error a router would about the segment
// last captured (the SYN).
func (p *peer) send6or4ICMP(typ, code uint8) {
	if err := p.raw.Send(linktest.ICMPError(p.last, typ, code, 1280)); err != nil {
		p.t.Fatal(err)
	}
}

// kernelDial runs script against the kernel's connect() once its SYN is
// captured, and returns connect()'s errno (0 on success).
func kernelDial(p *peer, script func(p *peer)) syscall.Errno {
	return kernelClient(p, nil, script)
}

// kernelClient is kernelDial with use, what the client does with the
// connection before it closes it with RST (SO_LINGER 0); use's error is
// the client's.
func kernelClient(p *peer, use func(c net.Conn) error, script func(p *peer)) syscall.Errno {
	p.t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- lab.Do(p.l.ClientNS, func() error {
			c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", p.server().String())
			if err == nil {
				if use != nil {
					err = use(c)
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			return err
		})
	}()
	first := p.next(3 * time.Second)
	if first == nil || first.Seg.Flags&^(tcp.FlagECE|tcp.FlagCWR) != tcp.FlagSYN {
		p.t.Fatalf("no SYN from the kernel captured: %+v", first)
	}
	p.syn = *first
	script(p)
	var en syscall.Errno
	if err := <-done; err != nil && !errors.As(err, &en) {
		p.t.Fatalf("kernel client: %v", err)
	}
	return en
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "established"
	}
	return fastpath.ErrnoName(e)
}

// failedAs is the one outcome of a one-attempt run.
func failedAs(r *report.Report) string {
	if r.Established == 1 {
		return "established"
	}
	for k, v := range r.Failed {
		if v == 1 {
			return k
		}
	}
	return fmt.Sprintf("no single outcome: %+v", r)
}
