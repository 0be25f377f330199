// Package xdpconnect opens TCP connections from user space over AF_XDP, with
// the behaviour and the errors of Linux's connect() (docs/connect.md), at
// rates a kernel connect() loop cannot reach.
//
// [Open] does the wiring for a set of targets: it resolves the route and the
// neighbour, inspects the interface, reserves the source ports, loads and
// attaches the XDP program (native, else generic) and opens one AF_XDP socket
// per active RX queue. [Session.Run] then runs a load [Plan] and returns the
// report; [Session.Dial] opens single connections whose errors are the
// kernel's (errors.Is(err, syscall.ECONNREFUSED)); [Session.Close] undoes
// everything. A Session is used by one goroutine at a time, except Dial,
// which is safe to call concurrently.
//
// # Errors
//
// An [*OptionError] means the options or the plan cannot work (a bad
// address, too few ports, more workers than queues): nothing was sent; its
// Field names the Options or Plan field at fault and its Reason what to
// change (errors.Is finds [ErrUnbounded] and [ErrNotSupported]). A session
// serves one engine: a second Run, or a Run after Dial, or a Dial after
// Run has ended, is [ErrSessionUsed]. Dial returns the kernel's errnos.
// Other errors come from the system (no route, no ARP reply, a missing
// capability).
//
// # One import
//
// The modes ([CloseMode], [AttachMode], [SocketMode]), [Request] and
// [Report] are the lower packages' own types under this package's names,
// so a program needs no other import of this module.
//
// # Privileges
//
// Root, or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK
// ([SetcapCaps]); CAP_SYS_ADMIN too for [Options.Netns]. [CheckCapabilities]
// names what is missing.
package xdpconnect
