// Package tcp is the protocol core of xdpconnect: the Linux TCP active open
// (connect() through ESTABLISHED, its errors, and the minimum after it) as
// pure functions over byte slices and small structs.
//
// It has no I/O, no goroutines, no clock and no randomness of its own: the
// caller passes the current time and the secret keys in, so every rule is
// deterministically testable, including loss and reordering. Rule numbers in
// comments and tests (S1, Y2, R4 ...) refer to docs/connect.md, the
// repository's description of Linux 6.18's behaviour.
//
// # Contents
//
//   - Header views over []byte (Ethernet with one optional VLAN tag, IPv4,
//     IPv6, TCP, ICMP, ICMPv6, ARP) with getters and setters; RFC 1071
//     checksums and RFC 1624 incremental updates.
//   - [SYNTemplate]: a SYN as Linux emits it, built once per (source,
//     destination) and stamped per connection by patching the variable
//     fields and updating the checksums incrementally.
//   - [ISNGen]: RFC 6528 initial sequence numbers and per-connection
//     timestamp offsets from a keyed SipHash, as Linux does.
//   - [PortPicker]: RFC 6056 Algorithm 4 source port selection as Linux
//     does it (even ports first), with EADDRNOTAVAIL on exhaustion, and
//     [Quarantine] for ports closed by FIN.
//   - [Conn] and [Params]: the SYN-SENT state machine and the minimum after
//     ESTABLISHED, returning a [Verdict] that says what to send and report.
//   - [Wheel]: a hashed timer wheel with O(1) schedule and cancel, advanced
//     explicitly, with no allocation per timer.
//   - [Parse]: classifies a received frame without allocating.
//
// # Concurrency
//
// Values are not safe for concurrent mutation; [ISNGen] and [Params] are
// read-only after construction and may be shared.
//
// # Errors
//
// Connection outcomes are [syscall.Errno] values (ECONNREFUSED, ETIMEDOUT,
// EHOSTUNREACH ...), so callers use errors.Is. The packet path returns
// [DropReason] values, never allocated errors.
package tcp
