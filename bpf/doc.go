// Package bpf holds xdpconnect's XDP program (xdp.c, compiled by bpf2go; the
// generated objects are committed) and its loader.
//
// The program steers frames of our flows, and only those, to the AF_XDP
// socket of the queue they arrived on: TCP to one of our source addresses
// within our source port range, ICMP errors quoting such a segment, and
// ARP/neighbour solicitations for dedicated source addresses. Everything
// else passes to the kernel untouched. Per-CPU counters record every
// decision by reason.
//
// The program is attached through a bpf_link, so the kernel detaches it when
// the owning process exits, however it exits.
//
// # Errors
//
// Missing privileges are reported naming the capability (CAP_BPF,
// CAP_NET_ADMIN); an interface that already has an XDP program (for example
// another xdpconnect) is reported as busy.
package bpf
