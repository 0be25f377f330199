// Package route resolves the next hop for a destination the way the kernel's
// ip_route_connect does for connect(): outgoing interface, preferred source
// address, gateway, the neighbour's link-layer address and the MTU.
//
// # Errors
//
// Errors wrap syscall.Errno values so callers use errors.Is, with the errno
// connect() would return: no route is ENETUNREACH; a multicast or broadcast
// destination is ENETUNREACH (tcp_v4_connect rejects RTCF_MULTICAST and
// RTCF_BROADCAST); unreachable, prohibit and blackhole routes are
// EHOSTUNREACH, EACCES and EINVAL; a neighbour that does not answer address
// resolution within the timeout is EHOSTUNREACH.
//
// # Concurrency
//
// A Resolver is safe for concurrent use; it is not used on the packet path.
package route
