// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Shared between the XDP program and its Go loader (bpf2go -type).
#ifndef XDPC_H
#define XDPC_H

#define XDPC_MAX_QUEUES 64
#define XDPC_MAX_ADDRS 65536

// Address flags.
#define XDPC_ADDR_DEDICATED 1 // not owned by the kernel: ARP/ND answered by us

// The arrival stamp in the metadata area in front of a redirected TCP
// segment: rx_ns is bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the program
// ran, check is rx_ns ^ XDPC_META_MAGIC (so stale headroom is not taken for
// a stamp). Native byte order. fastpath reads it (meta.go).
#define XDPC_META_MAGIC 0x78647063746d6521ULL
struct xdpc_meta {
	__u64 rx_ns;
	__u64 check;
};

struct xdpc_config {
	__u16 port_lo; // our source port range, host byte order
	__u16 port_hi;
};

// Per-CPU counter indices.
enum xdpc_counter {
	XDPC_CNT_REDIRECT_TCP,
	XDPC_CNT_REDIRECT_ICMP,
	XDPC_CNT_REDIRECT_ARP,
	XDPC_CNT_REDIRECT_ND,
	XDPC_CNT_PASS_OTHER_ETHERTYPE,
	XDPC_CNT_PASS_NOT_LOCAL,
	XDPC_CNT_PASS_OTHER_PORT,
	XDPC_CNT_PASS_OTHER_PROTO,
	XDPC_CNT_PASS_MALFORMED,
	XDPC_CNT_PASS_NO_SOCKET,
	XDPC_CNT_DROP_MALFORMED,
	XDPC_CNT_DROP_NO_SOCKET,
	XDPC_CNT_STAMP_FAILED, // no metadata area: the worker times the segment itself
	XDPC_CNT_MAX,
};

#endif
