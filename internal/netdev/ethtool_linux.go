package netdev

import (
	"bytes"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool commands (<linux/ethtool.h>).
const (
	ethtoolGDRVINFO  = 0x03
	ethtoolGRXCSUM   = 0x14
	ethtoolGTXCSUM   = 0x16
	ethtoolSTXCSUM   = 0x17
	ethtoolSGRO      = 0x2c
	ethtoolGGRO      = 0x2b
	ethtoolGCHANNELS = 0x3c
	ethtoolSCHANNELS = 0x3d
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ethtoolDrvinfo is struct ethtool_drvinfo.
type ethtoolDrvinfo struct {
	cmd       uint32
	driver    [32]byte
	version   [32]byte
	fwVersion [32]byte
	busInfo   [32]byte
	eromVer   [32]byte
	reserved2 [12]byte
	counts    [5]uint32
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// ethtool issues one SIOCETHTOOL request on ifname; data points to the
// command structure, whose first word is the command.
func ethtool(ifname string, data unsafe.Pointer) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var ifr [40]byte // struct ifreq: name[16], then a union holding ifr_data
	copy(ifr[:unix.IFNAMSIZ-1], ifname)
	*(*uintptr)(unsafe.Pointer(&ifr[16])) = uintptr(data)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

func getValue(ifname string, cmd uint32) (bool, error) {
	v := ethtoolValue{cmd: cmd}
	if err := ethtool(ifname, unsafe.Pointer(&v)); err != nil {
		return false, err
	}
	return v.data != 0, nil
}

func driverName(ifname string) (string, error) {
	d := ethtoolDrvinfo{cmd: ethtoolGDRVINFO}
	if err := ethtool(ifname, unsafe.Pointer(&d)); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(d.driver[:], "\x00")), nil
}

func channels(ifname string) (ethtoolChannels, error) {
	c := ethtoolChannels{cmd: ethtoolGCHANNELS}
	err := ethtool(ifname, unsafe.Pointer(&c))
	return c, err
}

// SetTxChecksum turns TX checksum offload of ifname on or off, as
// `ethtool -K IF tx on|off` does. For labs and tests that want the other
// case than the kernel's default; a run never calls it.
func SetTxChecksum(ifname string, on bool) error {
	v := ethtoolValue{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	return ethtool(ifname, unsafe.Pointer(&v))
}

// SetGRO turns generic receive offload of ifname on or off, as `ethtool -K
// IF gro on|off` does. A veth receives frames another veth sends with XDP
// (XDP_TX, redirects, live frames) only with GRO on or an XDP program of
// its own. For labs and tests.
func SetGRO(ifname string, on bool) error {
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	return ethtool(ifname, unsafe.Pointer(&v))
}

// SetRxTxChannels sets the active RX and TX queues of ifname, as `ethtool
// -L IF rx N tx N` does (drivers with separate RX/TX channels, like veth).
// For labs and tests.
func SetRxTxChannels(ifname string, n int) error {
	c, err := channels(ifname)
	if err != nil {
		return err
	}
	c.cmd = ethtoolSCHANNELS
	c.rxCount, c.txCount = uint32(n), uint32(n)
	return ethtool(ifname, unsafe.Pointer(&c))
}
