package main

import (
	be "encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
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
	ip := tcp.IPv4(f[tcp.EthHdrLen:])
	th := tcp.TCP(f[tcp.EthHdrLen+ip.HeaderLen():])
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
			c, err := (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp4", netip.AddrPortFrom(lab.ServerAddrDirect, peerPort).String())
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
	for _, tc := range differentialCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			pk := newPeer(t)
			var linux [][]answer
			pk.runKernel(func(p *peer) {
				if !tc.open {
					p.established()
				}
				linux = tc.script(p)
			})
			px := newPeer(t)
			var ours [][]answer
			r := px.run(func(p *peer) {
				if !tc.open {
					p.established()
				}
				ours = tc.script(p)
			}, func(o *runOpts) {
				o.plan.Close, o.plan.HoldFor = fastpath.CloseHold, 1500*time.Millisecond
			})
			if r.Established != 1 {
				t.Fatalf("xdpconnect did not establish: %+v", r)
			}
			l, x := fmt.Sprint(linux), fmt.Sprint(ours)
			rows = append(rows, fmt.Sprintf("| %s (%s) | %s | %s | %v |", tc.name, tc.rule, l, x, l == x))
			if l != x {
				t.Errorf("%s: Linux answered %s, xdpconnect %s", tc.rule, l, x)
			}
		})
	}
	t.Logf("\n| case | Linux | xdpconnect | match |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
