// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Shared between the XDP program and its Go loader (bpf2go -type).
#ifndef XDPC_H
#define XDPC_H

#define XDPC_MAX_QUEUES 64
#define XDPC_MAX_ADDRS 65536

// Address flags.
#define XDPC_ADDR_DEDICATED 1 // not owned by the kernel: ARP/ND answered by us

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
	XDPC_CNT_MAX,
};

#endif
