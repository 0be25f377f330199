package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

const peerPort = 7000

// peer is the scripted adversarial server: it captures what xdpconnect sends
// to peerPort (the server's kernel never sees it: nftables drops it) and
// forges replies with a raw socket.
type peer struct {
	t   *testing.T
	l   *lab.Lab
	raw *testutil.Raw
	syn tcp.Packet // our first SYN
	// last is the frame of the segment next returned.
	last []byte
	// win is the receive window the client announced in its handshake
	// ACK, scaled (differential_test.go).
	win uint32
	// v6 makes the peer talk IPv6 (the lab's 2001:2:: addresses).
	v6 bool
}

func newPeer(t *testing.T) *peer { return newPeerOf(t, false) }

// newPeerOf is newPeer over IPv6 when v6 is set.
func newPeerOf(t *testing.T, v6 bool) *peer {
	l := testutil.NewLab(t, lab.Options{})
	testutil.Nft(t, l.ServerNS, `table inet peer {
  chain in {
    type filter hook input priority 0;
    tcp dport 7000 drop
  }
}`)
	return &peer{t: t, l: l, raw: testutil.NewRaw(t, l.ServerNS, lab.ServerIf), v6: v6}
}

// server is the address the clients connect to.
func (p *peer) server() netip.AddrPort {
	if p.v6 {
		return netip.AddrPortFrom(lab.ServerAddr6Direct, peerPort)
	}
	return netip.AddrPortFrom(lab.ServerAddrDirect, peerPort)
}

// next returns our next segment to the peer port within d (nil if none).
func (p *peer) next(d time.Duration) *tcp.Packet {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f := p.raw.Recv(time.Until(deadline), false)
		var pk tcp.Packet
		// The kernel's segments (the differential test's other client)
		// come with partial checksums from the veth's TX offload.
		if f != nil && tcp.ParseWith(f, &pk, tcp.AcceptPartialChecksum) == tcp.KindTCP && pk.DstPort == peerPort {
			p.last = f
			return &pk
		}
	}
	return nil
}

func (p *peer) send(r tcp.Reply, payload int) {
	b := make([]byte, tcp.MaxReplyLen+payload+len(r.Payload))
	path := &tcp.Path{SrcMAC: [6]byte(p.raw.MAC), DstMAC: p.syn.SrcMAC, Src: lab.ServerAddrDirect.As4(), Dst: lab.ClientAddr.As4(),
		SrcPort: peerPort, DstPort: p.syn.SrcPort}
	if p.v6 {
		path.V6, path.Src6, path.Dst6 = true, lab.ServerAddr6Direct.As16(), lab.ClientAddr6.As16()
	}
	n := tcp.Build(b, path, &r)
	if payload > 0 && p.v6 {
		n2 := n + payload
		pl := uint16(n2 - 14 - tcp.IPv6HdrLen)
		b[18], b[19] = byte(pl>>8), byte(pl)
		tcp.TCP(b[14+tcp.IPv6HdrLen:n2]).SetChecksum6(&path.Src6, &path.Dst6)
		n = n2
	} else if payload > 0 {
		// Append payload bytes and fix lengths and checksums.
		n2 := n + payload
		ip := tcp.IPv4(b[14:])
		total := uint16(n2 - 14)
		b[16], b[17] = byte(total>>8), byte(total)
		b[24], b[25] = 0, 0
		cs := tcp.Checksum(ip[:20])
		b[24], b[25] = byte(cs>>8), byte(cs)
		tcp.TCP(b[34:n2]).SetChecksum4(ip.Src(), ip.Dst())
		n = n2
	}
	if err := p.raw.Send(b[:n]); err != nil {
		p.t.Fatal(err)
	}
}

// synAck is a well-formed SYN-ACK to our SYN, with options and TS echo.
func (p *peer) synAck(ack tcp.Seq, tsecr uint32) tcp.Reply {
	params := tcp.DefaultParams(1500, p.v6)
	return tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 5000, Ack: ack, Window: 65160, SYNOpts: &params, MSS: params.MSS, TSVal: 777, TSEcr: tsecr}
}

// run starts xdpconnect (one attempt, rst close) and runs script as the peer.
func (p *peer) run(script func(p *peer), mod func(o *runOpts)) *report.Report {
	type res struct {
		r   *report.Report
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := runInErr(p.l, p.server(), func(o *runOpts) {
			o.plan.Count = 1
			o.plan.Drain = 8 * time.Second
			o.opts.SynRetries = 2
			if mod != nil {
				mod(o)
			}
		})
		done <- res{r, err}
	}()
	first := p.next(6 * time.Second)
	if first == nil || first.Seg.Flags != tcp.FlagSYN {
		select {
		case out := <-done:
			p.t.Fatalf("no SYN captured: %+v (run: %v)", first, out.err)
		default:
			p.t.Fatalf("no SYN captured: %+v (run still going)", first)
		}
	}
	p.syn = *first
	script(p)
	out := testutil.Await(p.t, done, 60*time.Second, "the run against the scripted peer to end")
	if out.err != nil {
		p.t.Fatal(out.err)
	}
	return out.r
}

func (p *peer) expect(rule string, d time.Duration, check func(pk *tcp.Packet) bool) *tcp.Packet {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		pk := p.next(d - time.Since(start))
		if pk == nil {
			break
		}
		if check(pk) {
			return pk
		}
	}
	p.t.Fatalf("%s: expected segment not seen within %v", rule, d)
	return nil
}

func (p *peer) expectNone(rule string, d time.Duration, check func(pk *tcp.Packet) bool) {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		pk := p.next(d - time.Since(start))
		if pk == nil {
			return
		}
		if check(pk) {
			p.t.Fatalf("%s: unexpected %v seq %d ack %d", rule, pk.Seg.Flags, pk.Seg.Seq, pk.Seg.Ack)
		}
	}
}

func isSYN(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagSYN }

func TestAdversarialPeer(t *testing.T) {
	testutil.RequirePrivileges(t)
	t.Run("Y2 SYN-ACK with a wrong ACK", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			p.send(p.synAck(iss+2, p.syn.Seg.Opts.TSVal), 0)
			sent := time.Now()
			rst := p.expect("Y2 RST", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags.Has(tcp.FlagRST) })
			if rst.Seg.Flags != tcp.FlagRST || rst.Seg.Seq != iss+2 || rst.Seg.Window != 0 {
				t.Errorf("Y2: RST flags %v seq %d (want ISS+2 %d) window %d", rst.Seg.Flags, rst.Seg.Seq, iss+2, rst.Seg.Window)
			}
			p.expect("R5 fast retransmit", 500*time.Millisecond, isSYN)
			if el := time.Since(sent); el > 200*time.Millisecond {
				t.Errorf("R5: SYN resent %v after the bad ACK, want ~10 ms", el)
			}
			p.send(p.synAck(iss+1, p.syn.Seg.Opts.TSVal), 0)
			p.expect("H1 ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagACK && pk.Seg.Ack == 5001 })
		}, nil)
		if r.Established != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("Y2 RST with a wrong ACK", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			p.send(tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Seq: 0, Ack: iss + 5}, 0)
			sent := time.Now()
			p.expect("R5 fast retransmit", 500*time.Millisecond, func(pk *tcp.Packet) bool {
				if pk.Seg.Flags.Has(tcp.FlagRST) {
					t.Errorf("Y2: an RST was answered with %v", pk.Seg.Flags)
				}
				return isSYN(pk)
			})
			if el := time.Since(sent); el > 200*time.Millisecond {
				t.Errorf("R5: SYN resent %v after the RST, want ~10 ms", el)
			}
			p.send(p.synAck(iss+1, 0), 0)
		}, nil)
		if r.Established != 1 || r.FailedTotal() != 0 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("Y3 bad timestamp echo", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			p.send(p.synAck(iss+1, p.syn.Seg.Opts.TSVal+100000), 0)
			rst := p.expect("Y3 RST", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags.Has(tcp.FlagRST) })
			if rst.Seg.Seq != iss+1 {
				t.Errorf("Y3: RST seq %d, want SEG.ACK %d", rst.Seg.Seq, iss+1)
			}
			// No fast retransmit: the next SYN comes on the 1 s timer.
			p.expectNone("Y3 no fast retransmit", 500*time.Millisecond, isSYN)
			p.send(p.synAck(iss+1, 0), 0) // TSecr 0 is accepted
		}, nil)
		if r.Established != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("Y6 data and FIN on the SYN-ACK", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			sa := p.synAck(p.syn.Seg.Seq+1, p.syn.Seg.Opts.TSVal)
			sa.Flags |= tcp.FlagFIN
			p.send(sa, 5)
			ack := p.expect("H1 ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags.Has(tcp.FlagACK) })
			if ack.Seg.Ack != 5001 {
				t.Errorf("Y6: ACK %d, want IRS+1 = 5001 (payload and FIN not acknowledged)", ack.Seg.Ack)
			}
		}, nil)
		if r.Established != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("Y4 RST with an acceptable ACK", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			p.send(tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Ack: p.syn.Seg.Seq + 1}, 0)
		}, nil)
		if r.Failed["ECONNREFUSED"] != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("Y8 simultaneous open", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			params := tcp.DefaultParams(1500, false)
			p.send(tcp.Reply{Flags: tcp.FlagSYN, Seq: 9000, Window: 65535, SYNOpts: &params, MSS: 1460, TSVal: 55}, 0)
			sa := p.expect("Y8 SYN-ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagSYN|tcp.FlagACK })
			if sa.Seg.Seq != iss || sa.Seg.Ack != 9001 || sa.Seg.Opts.MSS != 1460 || sa.Seg.Opts.TSEcr != 55 {
				t.Errorf("Y8: SYN-ACK seq %d ack %d opts %+v", sa.Seg.Seq, sa.Seg.Ack, sa.Seg.Opts)
			}
			p.send(tcp.Reply{Flags: tcp.FlagACK, Seq: 9001, Ack: iss + 1, Window: 502}, 0)
		}, nil)
		if r.Established != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("C1 ICMP quoting a wrong sequence, then the right one", func(t *testing.T) {
		p := newPeer(t)
		start := time.Now()
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			p.icmp(3, 1, iss+2) // C1: outside {ISS, ISS+1}: ignored
			p.expect("C1 attempt goes on", 1500*time.Millisecond, isSYN)
			p.icmp(3, 1, iss) // C2: host unreachable aborts
		}, nil)
		if r.Failed["EHOSTUNREACH"] != 1 || time.Since(start) > 3*time.Second {
			t.Fatalf("report %+v after %v", r, time.Since(start))
		}
	})
	t.Run("E5 keepalive and H3 duplicate SYN-ACK after ESTABLISHED", func(t *testing.T) {
		p := newPeer(t)
		r := p.run(func(p *peer) {
			iss := p.syn.Seg.Seq
			p.send(p.synAck(iss+1, p.syn.Seg.Opts.TSVal), 0)
			p.expect("H1", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagACK })
			p.send(tcp.Reply{Flags: tcp.FlagACK, Seq: 5000, Ack: iss + 1, Window: 502}, 1) // keepalive + 1 byte
			ka := p.expect("E5 ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagACK })
			if ka.Seg.Ack != 5001 {
				t.Errorf("E5: ACK %d, want 5001", ka.Seg.Ack)
			}
			p.send(p.synAck(iss+1, p.syn.Seg.Opts.TSVal), 0) // duplicate SYN-ACK
			p.expect("H3 challenge ACK", time.Second, func(pk *tcp.Packet) bool { return pk.Seg.Flags == tcp.FlagACK && pk.Seg.Ack == 5001 })
		}, func(o *runOpts) {
			o.plan.Close = fastpath.CloseHold
			o.plan.HoldFor = 1500 * time.Millisecond
		})
		if r.Established != 1 || r.Closed != 1 {
			t.Fatalf("report %+v", r)
		}
	})
}

// icmp sends an ICMP destination unreachable quoting our SYN with seq.
func (p *peer) icmp(typ, code uint8, seq tcp.Seq) {
	q := make([]byte, 28)
	tcp.IPv4(q).Encode(&tcp.IPv4Fields{TotalLen: 60, DF: true, TTL: 64, Protocol: tcp.ProtoTCP, Src: lab.ClientAddr.As4(), Dst: lab.ServerAddrDirect.As4()})
	q[20], q[21] = byte(p.syn.SrcPort>>8), byte(p.syn.SrcPort)
	q[22], q[23] = byte(peerPort>>8), byte(peerPort&0xff)
	q[24], q[25], q[26], q[27] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	icmp := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, q...)
	cs := tcp.Checksum(icmp)
	icmp[2], icmp[3] = byte(cs>>8), byte(cs)
	ip := make([]byte, 20)
	tcp.IPv4(ip).Encode(&tcp.IPv4Fields{TotalLen: uint16(20 + len(icmp)), TTL: 64, Protocol: tcp.ProtoICMP, Src: lab.ServerAddrDirect.As4(), Dst: lab.ClientAddr.As4()})
	f := append(append(append(append([]byte{}, p.syn.SrcMAC[:]...), p.raw.MAC...), 0x08, 0x00), ip...)
	f = append(f, icmp...)
	if err := p.raw.Send(f); err != nil {
		p.t.Fatal(err)
	}
}
