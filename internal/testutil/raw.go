package testutil

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"golang.org/x/sys/unix"
)

// Raw is an AF_PACKET socket on one interface of a lab namespace: the
// scripted peer of tests, which captures what we send and forges replies.
type Raw struct {
	fd      int
	ifindex int
	MAC     net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// NewRaw opens a raw socket on ifname in namespace ns, closed at test end.
func NewRaw(tb testing.TB, ns, ifname string) *Raw {
	tb.Helper()
	r := &Raw{fd: -1}
	err := lab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		r.fd, r.ifindex, r.MAC = fd, ifi.Index, ifi.HardwareAddr
		return nil
	})
	if err != nil {
		tb.Fatalf("raw socket on %s/%s: %v", ns, ifname, err)
	}
	tb.Cleanup(func() { unix.Close(r.fd) })
	return r
}

// Send transmits one Ethernet frame.
func (r *Raw) Send(frame []byte) error {
	return unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6})
}

// Recv returns the next frame the interface sent or received, or nil after
// timeout. Outgoing frames of the interface itself are skipped unless
// outgoing is true.
func (r *Raw) Recv(timeout time.Duration, outgoing bool) []byte {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 9000)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		_ = unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING && !outgoing {
			continue
		}
		return append([]byte(nil), buf[:n]...)
	}
}

// String describes the socket.
func (r *Raw) String() string { return fmt.Sprintf("raw(ifindex %d, %s)", r.ifindex, r.MAC) }
