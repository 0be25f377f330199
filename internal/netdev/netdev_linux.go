package netdev

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Tri is a yes/no that may be unknown (the driver does not say).
type Tri int8

// Tri values.
const (
	Unknown Tri = iota
	No
	Yes
)

func tri(ok bool, err error) Tri {
	switch {
	case err != nil:
		return Unknown
	case ok:
		return Yes
	}
	return No
}

// String is "on", "off" or "unknown".
func (t Tri) String() string { return [...]string{"unknown", "off", "on"}[t] }

// Info describes one interface.
type Info struct {
	Name  string
	Index int
	// Kind is the netlink link type ("veth", "macvlan", "device" for a
	// physical NIC ...).
	Kind string
	// Driver is the ethtool driver name ("veth", "mlx5_core" ...), empty
	// when the device has no ethtool driver information.
	Driver string
	MTU    int
	// AllocatedRxQueues is what netlink reports (IFLA_NUM_RX_QUEUES): the
	// queues the device was created with, usually more than are in use.
	AllocatedRxQueues int
	// ActiveRxQueues are the RX queues in use (ethtool channels: rx plus
	// combined); 0 when the driver does not report channels. An AF_XDP
	// socket can only bind to an active queue.
	ActiveRxQueues int
	// MaxRxQueues is the most the driver allows (ethtool -l maximums).
	MaxRxQueues int
	// TxChecksum, RxChecksum and GRO are the device's offload settings.
	TxChecksum, RxChecksum, GRO Tri
	// ParentIndex is IFLA_LINK: the lower device of a macvlan/ipvlan/vlan,
	// or a veth's peer (an index in the peer's namespace).
	ParentIndex int
	// Parent describes the lower device when it is in this namespace.
	Parent *Info
	// XDPAttached says an XDP program is attached already.
	XDPAttached bool
	// XDP is what the driver announces; XDPErr says why it is unknown.
	XDP    XDPFeatures
	XDPErr error
}

// Inspect describes interface ifindex of the calling thread's namespace.
func Inspect(ifindex int) (Info, error) {
	return inspect(ifindex, 0)
}

func inspect(ifindex, depth int) (Info, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return Info{}, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	a := l.Attrs()
	in := Info{Name: a.Name, Index: a.Index, Kind: l.Type(), MTU: a.MTU, AllocatedRxQueues: a.NumRxQueues,
		ParentIndex: a.ParentIndex, XDPAttached: a.Xdp != nil && a.Xdp.Attached}
	in.Driver, _ = driverName(a.Name)
	if c, err := channels(a.Name); err == nil {
		in.ActiveRxQueues = int(c.rxCount + c.combinedCount)
		in.MaxRxQueues = int(max(c.maxRx, c.maxCombined))
	}
	in.TxChecksum = tri(getValue(a.Name, ethtoolGTXCSUM))
	in.RxChecksum = tri(getValue(a.Name, ethtoolGRXCSUM))
	in.GRO = tri(getValue(a.Name, ethtoolGGRO))
	in.XDP, in.XDPErr = XDPFeaturesOf(a.Index)
	// A veth's IFLA_LINK is its peer, in another namespace: not a parent.
	if in.ParentIndex != 0 && in.Kind != "veth" && depth < 4 {
		if p, err := inspect(in.ParentIndex, depth+1); err == nil {
			in.Parent = &p
		}
	}
	return in, nil
}

// LocalVirtual reports whether every frame arriving on the interface comes
// from a peer on this host, never from a wire: a veth or netkit (whose peer
// is another namespace of this kernel), or a macvlan/ipvlan whose lower
// device is one of those. Such frames may carry partial checksums (the
// sender's TX checksum offload leaves completing them to a NIC that never
// comes), and Linux itself accepts them unverified; a frame from a wire
// never has one. The reason says how that was decided.
func (in Info) LocalVirtual() (bool, string) {
	switch {
	case in.Kind == "veth" || in.Kind == "netkit":
		return true, in.Kind + " device: its frames come from its peer on this host"
	case in.Kind == "macvlan" || in.Kind == "ipvlan" || in.Kind == "macvtap":
		if in.Parent == nil {
			return false, in.Kind + " whose lower device is not visible in this namespace"
		}
		ok, why := in.Parent.LocalVirtual()
		return ok, in.Kind + " on " + in.Parent.Name + ": " + why
	}
	return false, fmt.Sprintf("%s device (driver %q) may receive frames from a wire", in.Kind, in.Driver)
}

// Queues returns how many RX queues a run can bind sockets to. known is
// false when the driver reports no channels; the caller then has to probe
// (an AF_XDP bind to an inactive queue fails with EINVAL).
func (in Info) Queues() (n int, known bool) {
	if in.ActiveRxQueues > 0 {
		return in.ActiveRxQueues, true
	}
	return max(in.AllocatedRxQueues, 1), false
}
