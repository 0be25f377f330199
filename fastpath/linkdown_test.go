package fastpath

import (
	"sync/atomic"
	"testing"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// tcpFrame is an Ethernet frame of ours with a TCP segment of the given
// flags and payload over IPv4 or IPv6, padded to pad bytes.
func tcpFrame(v6 bool, flags tcp.Flags, payload, pad int) []byte {
	var f []byte
	if v6 {
		f = make([]byte, 14+40+20+payload)
		f[12], f[13] = 0x86, 0xdd
		ip := f[14:]
		ip[0], ip[4], ip[5], ip[6] = 6<<4, byte((20+payload)>>8), byte(20+payload), 6
	} else {
		f = make([]byte, 14+20+20+payload)
		f[12], f[13] = 0x08, 0x00
		ip := f[14:]
		ip[0], ip[2], ip[3], ip[9] = 0x45, byte((40+payload)>>8), byte(40+payload), 6
	}
	th := f[len(f)-20-payload:]
	th[12], th[13] = 5<<4, byte(flags)
	for len(f) < pad {
		f = append(f, 0)
	}
	return f
}

// Frames queued into a down link are counted by kind from their headers:
// a pure ACK padded to Ethernet's minimum is still a pure ACK (its length
// is the IP header's), a FIN or data is data, an RST|ACK an RST, a
// SYN|ACK a SYN; ARP replies are not TCP and count nowhere.
func TestNotSentKind(t *testing.T) {
	for _, c := range []struct {
		name string
		f    []byte
		want Counter
	}{
		{"SYN", tcpFrame(false, tcp.FlagSYN, 0, 0), CntDownSYN},
		{"SYN v6", tcpFrame(true, tcp.FlagSYN, 0, 0), CntDownSYN},
		{"ACK padded", tcpFrame(false, tcp.FlagACK, 0, 60), CntDownACK},
		{"ACK v6", tcpFrame(true, tcp.FlagACK, 0, 0), CntDownACK},
		{"RST|ACK", tcpFrame(false, tcp.FlagRST|tcp.FlagACK, 0, 60), CntDownRST},
		{"FIN|ACK", tcpFrame(false, tcp.FlagFIN|tcp.FlagACK, 0, 60), CntDownData},
		{"data", tcpFrame(true, tcp.FlagACK|tcp.FlagPSH, 100, 0), CntDownData},
		{"ARP", append([]byte{12: 0x08, 13: 0x06}, make([]byte, 46)...), -1},
	} {
		if got := notSentKind(c.f); got != c.want {
			t.Errorf("%s: counter %d, want %d", c.name, got, c.want)
		}
	}
}

// While the link is down (Config.LinkDown) every frame queued is counted
// by kind and every handshake completed then is counted as such; no SYN
// sent then is timed (Karn). With the link up, none of it.
func TestEngineLinkDownCounts(t *testing.T) {
	for _, down := range []bool{false, true} {
		srv := linktest.NewServer()
		l := linktest.NewLink(srv.Handle)
		cfg := testConfig(linktest.ListenPort, linktest.ClosedPort)
		cfg.Count = 200
		cfg.LinkDown = new(atomic.Bool)
		cfg.LinkDown.Store(down)
		r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
		if r.Established != 100 || r.Failed["ECONNREFUSED"] != 100 {
			t.Fatalf("down %v: established %d, failed %v", down, r.Established, r.Failed)
		}
		var samples uint64
		for _, b := range r.RTTHist {
			samples += b.Count
		}
		if !down {
			if r.EstablishedDown != 0 || r.QueuedDown != nil || samples != 100 {
				t.Fatalf("link up: established while down %d, queued %v, %d RTT samples (want 100)", r.EstablishedDown, r.QueuedDown, samples)
			}
			continue
		}
		// The 200 SYNs, the 100 handshakes' ACKs and the RSTs that close
		// them (close mode rst) were all queued while down.
		if r.EstablishedDown != 100 || r.QueuedDown["SYN"] != 200 || r.QueuedDown["ACK"] != 100 || r.QueuedDown["RST"] != r.RSTSent || r.RSTSent == 0 {
			t.Fatalf("link down: established while down %d (want 100), queued %v (want 200 SYN, 100 ACK, %d RST)", r.EstablishedDown, r.QueuedDown, r.RSTSent)
		}
		if samples != 0 {
			t.Fatalf("link down: %d RTT samples, want none (Karn)", samples)
		}
	}
}
