package xdpconnect

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// doctor says whether --xdp-tx can run: on a default veth pair (the
// peer without XDP or GRO) it cannot, and says how to fix it; with GRO on
// at the peer it can.
func TestDoctorXDPTX(t *testing.T) {
	for _, gro := range []bool{false, true} {
		l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, PeerGRO: gro})
		checks, err := Doctor(context.Background(), "", netip.AddrPortFrom(l.ServerAddr, 8080), l.ClientNS)
		if err != nil {
			t.Fatal(err)
		}
		var got *Check
		for i := range checks {
			if checks[i].Name == "xdp-tx" {
				got = &checks[i]
			}
		}
		want, words := "WARN", "gro on"
		switch {
		case bpf.LiveFrames() != nil:
			gro, words = false, "live-frame mode" // refused whatever the peer does
		case gro:
			want = "OK"
		}
		if got == nil || got.Status != want || !gro && !strings.Contains(got.Fix+got.Detail, words) {
			t.Fatalf("peer GRO %v: xdp-tx check %+v, want %s", gro, got, want)
		}
	}
}
