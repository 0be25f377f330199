package lab

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value of <linux/ethtool.h>.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

const ethtoolSTXCSUM = 0x17 // ETHTOOL_STXCSUM

// disableTxChecksum turns TX checksum offload off on ifname in the calling
// thread's namespace, as `ethtool -K ifname tx off` does. The legacy ioctl is
// used because the ethtool netlink family has no binding among our
// dependencies; this is a lab helper, not a packet path.
func disableTxChecksum(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: ethtoolSTXCSUM, data: 0}
	var ifr [40]byte // struct ifreq: name[16] then a union holding ifr_data
	copy(ifr[:unix.IFNAMSIZ-1], ifname)
	*(*uintptr)(unsafe.Pointer(&ifr[16])) = uintptr(unsafe.Pointer(&v))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr[0])))
	if errno != 0 {
		return fmt.Errorf("lab: disable tx checksum offload on %s: %w", ifname, errno)
	}
	return nil
}
