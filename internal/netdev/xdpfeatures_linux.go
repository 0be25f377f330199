package netdev

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// XDPFeatures are the XDP capabilities a driver announces (the netdev
// generic-netlink family, NETDEV_A_DEV_XDP_FEATURES, Linux 6.3+): what
// `ip link set ... xdp` and AF_XDP can do on it, known without attaching.
type XDPFeatures uint64

// Feature bits (enum netdev_xdp_act).
const (
	XDPBasic              XDPFeatures = 1 << 0 // native XDP: XDP_PASS, XDP_DROP, XDP_TX
	XDPRedirect           XDPFeatures = 1 << 1 // native XDP_REDIRECT (to AF_XDP)
	XDPNdoXmit            XDPFeatures = 1 << 2 // target of a redirect
	XDPZeroCopy           XDPFeatures = 1 << 3 // AF_XDP zero-copy
	XDPHWOffload          XDPFeatures = 1 << 4
	XDPRxSG               XDPFeatures = 1 << 5 // multi-buffer frames
	XDPNdoXmitSG          XDPFeatures = 1 << 6
	netdevCmdDevGet                   = 1 // NETDEV_CMD_DEV_GET
	netdevAttrIfindex                 = 1 // NETDEV_A_DEV_IFINDEX
	netdevAttrXDPFeatures             = 3 // NETDEV_A_DEV_XDP_FEATURES
)

// Native reports native-mode XDP with redirect, which AF_XDP needs.
func (f XDPFeatures) Native() bool { return f&(XDPBasic|XDPRedirect) == XDPBasic|XDPRedirect }

// String lists the set features ("basic,redirect,...", "none").
func (f XDPFeatures) String() string {
	names := []string{"basic", "redirect", "ndo-xmit", "xsk-zerocopy", "hw-offload", "rx-sg", "ndo-xmit-sg"}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// genlHeader is struct genlmsghdr: cmd, version, two reserved bytes that
// strict validation wants zero. (nl.Genlmsg serializes 4 bytes out of a
// 2-byte struct, so its reserved bytes are whatever follows in memory.)
type genlHeader [4]byte

func (h genlHeader) Len() int          { return len(h) }
func (h genlHeader) Serialize() []byte { return h[:] }

// ErrNoFeatureInfo means the kernel has no netdev netlink family (before
// 6.3): whether the driver has native XDP can only be learnt by attaching.
var ErrNoFeatureInfo = errors.New("the kernel does not report XDP features (netdev netlink family, Linux 6.3+)")

// XDPFeaturesOf asks the kernel what XDP the driver of ifindex (calling
// thread's namespace) supports.
func XDPFeaturesOf(ifindex int) (XDPFeatures, error) {
	fam, err := netlink.GenlFamilyGet("netdev")
	if err != nil {
		return 0, ErrNoFeatureInfo
	}
	req := nl.NewNetlinkRequest(int(fam.ID), 0)
	req.AddData(genlHeader{netdevCmdDevGet, 1, 0, 0})
	req.AddData(nl.NewRtAttr(netdevAttrIfindex, nl.Uint32Attr(uint32(ifindex))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, err
		}
		for _, a := range attrs {
			if a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) == 8 {
				return XDPFeatures(binary.NativeEndian.Uint64(a.Value)), nil
			}
		}
	}
	return 0, ErrNoFeatureInfo
}
