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
	// scan is set for SYN-only runs whose SYNs the kernel generates
	// (xdpc_syngen): their answers are counted and reset here.
	__u32 scan;
};

// A SYN-only probe's ISN is scan_isn(mix, source port): mix is a keyed
// hash of the pair (our address, the target) made in Go, so the answer
// can be matched without state.
struct xdpc_pair_key {
	__u8 ours[16]; // IPv4 as ::ffff:a.b.c.d
	__u8 peer[16];
	__u16 peer_port; // network byte order
	__u16 pad;
};

struct xdpc_pair_val {
	__u64 mix;
	__u32 slot_base; // the pair's first slot in the answered bitmap
	__u32 pad;
};

#define XDPC_GEN_FRAME 128

// One generator call: the pair's SYN template (the frame passed to
// BPF_PROG_RUN) and what changes per probe.
struct xdpc_gen {
	__u64 mix;
	__u32 next; // probes of this pair so far: the port cursor
	__u32 slot_base;
	__u32 ip_off, tcp_off, ts_off; // ts_off 0: no timestamp option
	__u32 ip_sum, tcp_sum;         // the template's sums without the per-probe fields
	__u32 ts_add;                  // TSval = ms clock + ts_add
	__u32 len;                     // the template's length
	__u16 flags_word;
	__u8 v6;
	__u8 pad;
	// The template itself: a frame of the page pool comes back from its
	// trip (the reflector's XDP_TX, our RST) rewritten, so every SYN is
	// copied whole.
	__u8 frame[XDPC_GEN_FRAME];
};

#define XDPC_SCAN_SLOTS_WORDS (1 << 20) // 2^26 slots, the table's bound
#define XDPC_SCAN_ICMP 512              // v6 * 256 + type(0..15) * 16 + code(0..15)

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
	XDPC_CNT_DROP_SCAN_ANSWER, // a SYN-only probe's RST or ICMP error, counted
	XDPC_CNT_TX_SCAN_RST,      // a SYN-only probe's SYN-ACK, counted and turned into our RST
	XDPC_CNT_STAMP_FAILED, // no metadata area: the worker times the segment itself
	XDPC_CNT_SCAN_SENT,        // SYN-only probes the generator made
	XDPC_CNT_SCAN_ESTABLISHED, // first SYN-ACK to a probe
	XDPC_CNT_SCAN_REFUSED,     // first RST to a probe
	XDPC_CNT_SCAN_DUPLICATE,   // a probe's answer after its first
	XDPC_CNT_MAX,
};

#endif
