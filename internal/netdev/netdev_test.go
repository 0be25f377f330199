package netdev_test

import (
	"testing"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

func inspect(t *testing.T, ns, ifname string) netdev.Info {
	t.Helper()
	link, err := lab.LinkByName(ns, ifname)
	if err != nil {
		t.Fatal(err)
	}
	var in netdev.Info
	if err := lab.Do(ns, func() error {
		var err error
		in, err = netdev.Inspect(link.Attrs().Index)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return in
}

// A veth with 4 allocated and 2 active queues, as ethtool shows them; a
// macvlan on it is local-virtual through its lower device, and has no
// native XDP.
func TestInspect(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{Queues: 4, ActiveQueues: 2, Macvlan: true})
	v := inspect(t, l.ClientNS, lab.ClientIf)
	if v.Kind != "veth" || v.Driver != "veth" || v.AllocatedRxQueues != 4 || v.ActiveRxQueues != 2 || v.TxChecksum != netdev.Yes {
		t.Fatalf("veth: %+v", v)
	}
	if q, known := v.Queues(); q != 2 || !known {
		t.Fatalf("veth queues %d %v", q, known)
	}
	if ok, why := v.LocalVirtual(); !ok {
		t.Fatalf("veth not local-virtual: %s", why)
	}
	if v.XDPErr != nil || !v.XDP.Native() {
		t.Fatalf("veth XDP features %v (%v): want native", v.XDP, v.XDPErr)
	}
	m := inspect(t, l.ClientNS, lab.MacvlanIf)
	if m.Kind != "macvlan" || m.Parent == nil || m.Parent.Name != lab.ClientIf {
		t.Fatalf("macvlan: %+v", m)
	}
	if ok, why := m.LocalVirtual(); !ok {
		t.Fatalf("macvlan on a veth not local-virtual: %s", why)
	}
	if m.XDP.Native() {
		t.Fatalf("macvlan announces native XDP: %v", m.XDP)
	}
	// Any other kind (here the loopback device, kind "device" like a NIC)
	// is not taken as local-virtual.
	lo := inspect(t, l.ClientNS, "lo")
	if ok, _ := lo.LocalVirtual(); ok {
		t.Fatal("lo taken as local-virtual")
	}
}
