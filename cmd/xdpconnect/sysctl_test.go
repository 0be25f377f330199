package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// segShape is what the differential test compares of a client segment:
// everything Linux decides from its settings, nothing that is random per
// connection (ports, ISN, IP ID, timestamp values).
type segShape struct {
	flags   tcp.Flags
	window  uint16
	ttl     uint8
	tos     uint8
	df      bool
	ipLen   int
	options string // hex, TSval and TSecr zeroed
}

func (s segShape) String() string {
	return fmt.Sprintf("%v win %d ttl %d tos %d df %v len %d opts %s", s.flags, s.window, s.ttl, s.tos, s.df, s.ipLen, s.options)
}

// shapeOf is the shape of an IPv4 TCP frame.
func shapeOf(f []byte) segShape {
	ip := tcp.IPv4(f[tcp.EthHdrLen:])
	th := tcp.TCP(f[tcp.EthHdrLen+ip.HeaderLen():])
	opts := append([]byte(nil), th[tcp.TCPHdrLen:th.DataOffset()]...)
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcp.OptEOL:
			i = len(opts)
		case tcp.OptNOP:
			i++
		default:
			if i+1 >= len(opts) || opts[i+1] < 2 {
				i = len(opts)
				break
			}
			if opts[i] == tcp.OptTimestamp && i+10 <= len(opts) {
				clear(opts[i+2 : i+10])
			}
			i += int(opts[i+1])
		}
	}
	return segShape{flags: th.Flags(), window: th.Window(), ttl: ip.TTL(), tos: ip.TOS(), df: ip.FlagsFrag()&0x4000 != 0,
		ipLen: ip.TotalLen(), options: fmt.Sprintf("%x", opts)}
}

// handshakeOf finds, among frames captured on the server's side, the SYN
// and the ACK that completes the handshake from client port port.
func handshakeOf(frames [][]byte, port uint16) (syn, ack []byte) {
	for _, f := range frames {
		var pk tcp.Packet
		if tcp.ParseWith(f, &pk, tcp.AcceptPartialChecksum) != tcp.KindTCP || pk.SrcPort != port {
			continue
		}
		switch {
		case pk.Seg.Flags == tcp.FlagSYN || pk.Seg.Flags == tcp.FlagSYN|tcp.FlagECE|tcp.FlagCWR:
			if syn == nil {
				syn = f
			}
		case pk.Seg.Flags == tcp.FlagACK && ack == nil && pk.Seg.PayloadLen == 0:
			ack = f
		}
	}
	return syn, ack
}

// The differential test of the namespace's settings: in one namespace, the
// kernel's connect() and xdpconnect open a connection to the same Linux
// listener; the SYNs and the handshake ACKs they send are captured on the
// server's side and must have the same shape (flags, window, TTL, TOS, DF,
// length, option layout), and the report states the settings applied.
func TestSysctlsLikeTheKernel(t *testing.T) {
	testutil.RequirePrivileges(t)
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		check   func(*testing.T, *report.Settings)
	}{
		{"defaults", nil, func(t *testing.T, s *report.Settings) {
			// The window scale follows net.core.rmem_max, which is the
			// host's (not per namespace): the kernel's SYN is the oracle.
			if s.Timestamps != 1 || !s.SACK || !s.WindowScaling || s.TTL != 64 || s.SynRetries != 6 {
				t.Errorf("report: %+v", *s)
			}
		}},
		{"tcp_timestamps=0, tcp_rmem max 32 MiB", map[string]string{"net/ipv4/tcp_timestamps": "0", "net/ipv4/tcp_rmem": "4096 131072 33554432"},
			func(t *testing.T, s *report.Settings) {
				if s.Timestamps != 0 || s.WindowScale != 10 {
					t.Errorf("report: %+v", *s)
				}
			}},
		{"tcp_sack=0, tcp_window_scaling=0, ip_default_ttl=50", map[string]string{"net/ipv4/tcp_sack": "0", "net/ipv4/tcp_window_scaling": "0", "net/ipv4/ip_default_ttl": "50"},
			func(t *testing.T, s *report.Settings) {
				if s.SACK || s.WindowScaling || s.TTL != 50 {
					t.Errorf("report: %+v", *s)
				}
			}},
		{"tcp_timestamps=2, tcp_ecn=1, tcp_syn_retries=3", map[string]string{"net/ipv4/tcp_timestamps": "2", "net/ipv4/tcp_ecn": "1", "net/ipv4/tcp_syn_retries": "3"},
			func(t *testing.T, s *report.Settings) {
				if s.Timestamps != 2 || !s.ECN || s.SynRetries != 3 {
					t.Errorf("report: %+v", *s)
				}
			}},
	} {
		t.Run(strings.NewReplacer(" ", "", ",", "+").Replace(tc.name), func(t *testing.T) {
			l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
			for k, v := range tc.sysctls {
				if err := lab.Sysctl(l.ClientNS, k, v); err != nil {
					t.Fatal(err)
				}
			}
			raw := testutil.NewRaw(t, l.ServerNS, lab.ServerIf)
			stop := make(chan struct{})
			captured := make(chan [][]byte, 1)
			go func() {
				var frames [][]byte
				for {
					select {
					case <-stop:
						captured <- frames
						return
					default:
					}
					if f := raw.Recv(50*time.Millisecond, false); f != nil {
						frames = append(frames, f)
					}
				}
			}()
			dst := netip.AddrPortFrom(l.ServerAddr, 8080)
			var kport uint16
			err := lab.Do(l.ClientNS, func() error {
				c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(context.Background(), "tcp4", dst.String())
				if err != nil {
					return err
				}
				kport = uint16(c.LocalAddr().(*net.TCPAddr).Port)
				time.Sleep(50 * time.Millisecond) // the ACK is out
				return c.Close()
			})
			if err != nil {
				t.Fatalf("kernel connect: %v", err)
			}
			r := runIn(t, l, dst, func(o *runOpts) { o.plan.Count, o.plan.Rate = 1, 0 })
			close(stop)
			frames := testutil.Await(t, captured, 10*time.Second, "the capture to end")
			if r.Established != 1 || r.TCP == nil {
				t.Fatalf("xdpconnect: established %d, settings %v", r.Established, r.TCP)
			}
			tc.check(t, (*report.Settings)(r.TCP))
			var xport uint16
			for _, f := range frames {
				var pk tcp.Packet
				if tcp.ParseWith(f, &pk, tcp.AcceptPartialChecksum) == tcp.KindTCP && pk.SrcPort >= 40000 && pk.SrcPort <= 49999 {
					xport = pk.SrcPort
					break
				}
			}
			ksyn, kack := handshakeOf(frames, kport)
			xsyn, xack := handshakeOf(frames, xport)
			if ksyn == nil || kack == nil || xsyn == nil || xack == nil {
				t.Fatalf("captured %d frames: kernel SYN %v ACK %v, xdpconnect SYN %v ACK %v", len(frames), ksyn != nil, kack != nil, xsyn != nil, xack != nil)
			}
			for _, seg := range []struct {
				name     string
				lin, xdp []byte
			}{{"SYN", ksyn, xsyn}, {"ACK", kack, xack}} {
				ls, xs := shapeOf(seg.lin), shapeOf(seg.xdp)
				match := ls == xs
				t.Logf("| %s | %s | %v | %v | %v |", tc.name, seg.name, ls, xs, match)
				if !match {
					t.Errorf("%s differs:\n  linux      %v\n  xdpconnect %v", seg.name, ls, xs)
				}
			}
			// Both ACKs follow their SYN: seq = ISN+1.
			for _, hs := range [][2][]byte{{ksyn, kack}, {xsyn, xack}} {
				var s, a tcp.Packet
				tcp.ParseWith(hs[0], &s, tcp.AcceptPartialChecksum)
				tcp.ParseWith(hs[1], &a, tcp.AcceptPartialChecksum)
				if a.Seg.Seq != s.Seg.Seq+1 {
					t.Errorf("port %d: ACK seq %d after SYN %d", a.SrcPort, a.Seg.Seq, s.Seg.Seq)
				}
			}
		})
	}
}
