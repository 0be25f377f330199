package xdptx

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// The --xdp-tx link sends what a worker transmits, every frame reaching
// the peer, its buffers free again after Kick, and nothing allocated per
// batch: the worker's hot path stays allocation-free with it. Batches
// larger than the slots go out in parts on the way.
func TestLiveLink(t *testing.T) {
	testutil.SkipIfNotSupported(t, bpf.LiveFrames())
	l := testutil.NewLab(t, lab.Options{PeerGRO: true})
	srv, err := lab.LinkByName(l.ServerNS, lab.ServerIf)
	if err != nil {
		t.Fatal(err)
	}
	rx := func() uint64 {
		t.Helper()
		s, err := lab.LinkByName(l.ServerNS, lab.ServerIf)
		if err != nil {
			t.Fatal(err)
		}
		return s.Attrs().Statistics.RxPackets
	}
	// A frame the peer's stack drops (a local experimental ethertype),
	// counted by its interface.
	frame := make([]byte, 60)
	copy(frame, srv.Attrs().HardwareAddr)
	binary.BigEndian.PutUint16(frame[12:], 0x88B6)
	err = lab.Do(l.ClientNS, func() error {
		ifc, err := net.InterfaceByName(lab.ClientIf)
		if err != nil {
			return err
		}
		prog, err := bpf.Load(1)
		if err != nil {
			return err
		}
		defer prog.Close()
		x, err := xsk.Open(ifc.Index, 0, xsk.Options{NumFrames: 1024, RingSize: 512})
		if err != nil {
			return err
		}
		defer x.Close()
		if err := prog.RegisterXSK(0, x.FD()); err != nil {
			return err
		}
		if _, err := prog.Attach(ifc.Index, bpf.AttachNative); err != nil {
			return err
		}
		if err := prog.SetTxDevice(ifc.Index); err != nil {
			return err
		}
		q, err := prog.TxQueue(0)
		if err != nil {
			return err
		}
		ln := New(x, q)
		umem := ln.UMEM()
		addrs := make([]uint64, 300)
		descs := make([]xsk.Desc, 300)
		send := func(n int) {
			got := ln.Alloc(addrs[:n])
			for i := 0; i < got; i++ {
				copy(umem[addrs[i]:], frame)
				descs[i] = xsk.Desc{Addr: addrs[i], Len: uint32(len(frame))}
			}
			if q := ln.Transmit(descs[:got]); q != n {
				t.Errorf("transmitted %d of %d", q, n)
			}
			if err := ln.Kick(); err != nil {
				t.Error(err)
			}
		}
		before := rx()
		allocs := testing.AllocsPerRun(50, func() { send(16) })
		if allocs != 0 {
			t.Errorf("%.1f allocations per batch", allocs)
		}
		send(300) // more than the slots: sent in two parts
		want := before + 51*16 + 300
		if got := rx(); got != want {
			t.Errorf("the peer received %d frames, want %d", got-before, want-before)
		}
		if free := x.FreeFrames(); free < 300 {
			t.Errorf("%d TX buffers free after Kick", free)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
