// Package netdev tells what a network interface is, as far as a run over
// AF_XDP depends on it: the driver and link kind, the active and allocated
// RX queues (ethtool channels, not netlink's allocated count), the offloads
// that change what arrives (TX checksum offload of a local peer, GRO), and
// whether frames on it can only come from a peer on the same host.
//
// Everything is read in the calling thread's network namespace, through the
// ethtool ioctl and netlink (sysfs is not used: it shows the namespace it
// was mounted in, not the caller's). Nothing here changes the interface.
package netdev
