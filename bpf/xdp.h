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
	// (syngen): their answers are counted and reset here.
	__u32 scan;
	// ifindex is the interface the program is attached to.
	__u32 ifindex;
	__u32 pad;
	// token is a random number of this load: a request from user space
	// (below) carries it, so no frame from the wire can pass for one.
	__u64 token;
};

// Requests from user space (BPF_PROG_RUN in live-frame mode) come to the
// attached program itself, not to a program of their own: the kernel's
// XDP dispatcher already holds the attached program, so a run with
// repeat > 1 costs microseconds instead of the two dispatcher rebuilds
// (tens of milliseconds) that a program nobody attached costs. A request
// is an Ethernet header with this ethertype (IEEE 802 local experimental)
// followed by struct xdpc_req, in XDPC_REQ_ROOM bytes; each repetition
// makes one frame. The kernel reuses a page of the call's pool once its
// frame has come back, restoring the page's bounds but not its bytes, so
// the frame is made after the request (the packet's start moved past
// XDPC_REQ_ROOM) and the request survives for the page's next use; the
// arrival stamp (16 bytes of metadata in front of a frame that comes back
// through us) stays clear of it. Requests run without an ingress device,
// so the kernel gives them the namespace's loopback (ifindex 1), where
// the program is never attached: a loopback frame without this load's
// token is a page someone rewrote after all and is dropped (counted),
// never taken for a frame from the wire. Every frame a request makes
// leaves through the device map tx_dev (the interface, found in the
// loader's namespace).
#define XDPC_REQ_ETHERTYPE 0x88B5
#define XDPC_REQ_SYNGEN 1 // a SYN-only probe (syngen's work)
#define XDPC_REQ_TX 2     // the next frame of the worker's TX slots
#define XDPC_REQ_ROOM 64
struct xdpc_req {
	__u64 token;
	__u32 kind;
	__u32 worker;
};

// Live-frame transmission (--xdp-tx): each worker writes its frames into
// its XDPC_TX_SLOTS slots of tx_slots (memory-mapped), resets its cursor
// and runs the program once per batch; every repetition copies the next
// slot into the page and redirects it to the interface (tx_dev). No
// socket buffer is made per frame.
#define XDPC_TX_SLOT 2048
#define XDPC_TX_DATA (XDPC_TX_SLOT - 8)
#define XDPC_TX_SLOTS 256
struct xdpc_tx_slot {
	__u32 len;
	__u32 pad;
	__u8 data[XDPC_TX_DATA];
};
struct xdpc_tx_cursor {
	__u32 next;
	__u32 pad[15]; // a cache line per worker
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
	XDPC_CNT_TX_LIVE,          // frames sent from the TX slots (--xdp-tx)
	XDPC_CNT_TX_LIVE_FAILED,   // a request that made no frame (past the slots, a reused page)
	XDPC_CNT_MAX,
};

#endif
