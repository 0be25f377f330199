package xdpconnect

import (
	"fmt"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
)

// checkXDPSend refuses frames sent by the XDP program (field: XDPTX or
// KernelSYNs) where they could not leave: a kernel without live frames, a
// frame longer than a TX slot, or an interface that drops them. Nothing
// has been sent when it refuses.
func (s *Session) checkXDPSend(field string) error {
	if s.mtu+18 > bpf.TxFrameMax {
		return optionErr(field, nil, "%s's MTU %d makes frames longer than the %d bytes a TX slot holds", s.ifname, s.mtu, bpf.TxFrameMax)
	}
	if why, fix := xdpSendBlocked(s.dev); why != "" {
		if fix != "" {
			return optionErr(field, nil, "%s (%s), or leave {%s} off", why, fix, field)
		}
		return optionErr(field, nil, "%s: leave {%s} off", why, field)
	}
	return nil
}

// xdpSendBlocked says why frames sent by XDP would not leave in (empty
// when they would, or when the kernel does not say) and how to fix it,
// for --xdp-tx, --xdp-syn and doctor.
func xdpSendBlocked(in netdev.Info) (why, fix string) {
	if err := bpf.LiveFrames(); err != nil {
		return err.Error(), ""
	}
	switch {
	case in.XDPErr != nil || in.XDP&netdev.XDPNdoXmit != 0:
		return "", ""
	case in.Kind == "veth":
		return fmt.Sprintf("the peer of %s drops frames sent by XDP: it has no XDP program and GRO off", in.Name),
			"'ethtool -K PEER gro on' in the peer's namespace, or an XDP program on the peer"
	}
	return fmt.Sprintf("the driver of %s (%s) takes no frames sent by XDP (no ndo_xdp_xmit)", in.Name, in.Kind), ""
}

// openXDPTX names the interface the program's frames leave by and makes
// a TX queue per socket; it runs in the session's namespace. Live frames
// come from the attached program, which must be in native mode: in
// generic mode every batch would cost the kernel two dispatcher rebuilds.
func (s *Session) openXDPTX() error {
	if s.attached != bpf.AttachNative {
		return optionErr("XDPTX", nil, "needs the XDP program in native mode; %s has it in %s mode", s.ifname, s.attached)
	}
	if err := s.prog.SetTxDevice(s.dev.Index); err != nil {
		return err
	}
	for i := range s.socks {
		q, err := s.prog.TxQueue(i)
		if err != nil {
			return err
		}
		s.txq = append(s.txq, q)
	}
	s.notes = append(s.notes, fmt.Sprintf("frames leave %s from the XDP program (live frames), not from the AF_XDP TX ring", s.ifname))
	return nil
}
