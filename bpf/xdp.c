//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// xdpconnect flow steering: frames of our connections go to the AF_XDP socket
// of the queue they arrived on; everything else passes to the kernel untouched.
//
// "Ours" means: TCP to one of our source addresses and a port in our source
// port range; ICMP/ICMPv6 errors quoting such a segment; ARP requests and
// neighbour solicitations for dedicated source addresses (which the kernel
// does not own, so xdpconnect answers for them).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/icmpv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdp.h"

// <linux/icmp.h> drags in libc socket headers; the ICMP header is all we need.
struct icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

char __license[] SEC("license") = "Dual BSD/GPL";

// Keeps the counter enum in BTF so bpf2go can export it to Go.
const enum xdpc_counter *xdpc_counter_unused __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XDPC_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpc_config);
} config SEC(".maps");

// Our IPv4 source addresses (network byte order) -> XDPC_ADDR_* flags.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPC_MAX_ADDRS);
	__type(key, __u32);
	__type(value, __u32);
} addrs4 SEC(".maps");

// Our IPv6 source addresses -> XDPC_ADDR_* flags.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPC_MAX_ADDRS);
	__type(key, struct in6_addr);
	__type(value, __u32);
} addrs6 SEC(".maps");

// SYN-only runs whose SYNs the kernel makes (syngen): the pairs, a
// bit per (pair, port) slot set by the probe's first answer, the ICMP
// answers by type and code, and the generator's current call.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct xdpc_pair_key);
	__type(value, struct xdpc_pair_val);
} scan_pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPC_SCAN_SLOTS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} scan_answered SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPC_SCAN_ICMP);
	__type(key, __u32);
	__type(value, __u64);
} scan_icmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpc_gen);
} scan_gen SEC(".maps");

// Live-frame transmission (--xdp-tx, xdp.h): the workers' slots, their
// cursors, and the interface the frames leave by. A device map holds the
// device itself, found in the loader's namespace: the frames go there
// whatever namespace the thread that runs the program is in.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPC_TX_SLOTS); // the loader sets workers x XDPC_TX_SLOTS
	__type(key, __u32);
	__type(value, struct xdpc_tx_slot);
} tx_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPC_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct xdpc_tx_cursor);
} tx_cursors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_dev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPC_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline int pass(__u32 reason)
{
	count(reason);
	return XDP_PASS;
}

// stamp writes the frame's arrival time in the metadata area in front of
// it: the worker times a SYN-ACK from when it arrived, not from the loop
// that finds it in the ring (copy-mode AF_XDP copies the area along).
static __always_inline void stamp(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xdpc_meta))) {
		count(XDPC_CNT_STAMP_FAILED);
		return;
	}
	void *data = (void *)(long)ctx->data;
	struct xdpc_meta *m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return;
	__u64 now = bpf_ktime_get_ns();
	m->rx_ns = now;
	m->check = now ^ XDPC_META_MAGIC;
}

// redirect sends the frame to this queue's socket. Without one, kernel-owned
// addresses fall back to the kernel (which answers as for a closed port) and
// dedicated ones are dropped: nobody else could use them.
static __always_inline int redirect(struct xdp_md *ctx, __u32 reason, __u32 addr_flags)
{
	__u32 q = ctx->rx_queue_index;
	if (bpf_map_lookup_elem(&xsks, &q)) {
		count(reason);
		if (reason == XDPC_CNT_REDIRECT_TCP)
			stamp(ctx);
		return bpf_redirect_map(&xsks, q, XDP_PASS);
	}
	if (addr_flags & XDPC_ADDR_DEDICATED) {
		count(XDPC_CNT_DROP_NO_SOCKET);
		return XDP_DROP;
	}
	return pass(XDPC_CNT_PASS_NO_SOCKET);
}

static __always_inline struct xdpc_config *config_of(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&config, &k);
}

static __always_inline int port_ours(__u16 port_be)
{
	struct xdpc_config *c = config_of();
	if (!c)
		return 0;
	__u16 p = bpf_ntohs(port_be);
	return p >= c->port_lo && p <= c->port_hi;
}

// scan_isn is a SYN-only probe's ISN (Go: bpf.ScanISN).
static __always_inline __u32 scan_isn(__u64 mix, __u16 port)
{
	__u64 x = mix ^ ((__u64)port * 0x9E3779B97F4A7C15ULL);
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (__u32)x;
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

// scan_first marks slot answered and says whether it was the first answer
// since its probe left.
static __always_inline int scan_first(__u32 slot)
{
	__u32 w = slot / 64;
	__u64 *v = bpf_map_lookup_elem(&scan_answered, &w);
	if (!v)
		return 0;
	__u64 bit = 1ULL << (slot % 64);
	return !(__sync_fetch_and_or(v, bit) & bit);
}

// scan_match finds the probe a segment or ICMP quote answers: the pair of
// (ours, peer, peer port), a port of ours, and seq = its ISN + delta.
// It returns the probe's slot, or -1. Callers have seen scan_on().
static __always_inline long scan_match(struct xdpc_pair_key *k, __u16 our_port_be, __u32 seq, __u32 delta)
{
	struct xdpc_config *c = config_of();
	if (!c)
		return -1;
	struct xdpc_pair_val *pv = bpf_map_lookup_elem(&scan_pairs, k);
	if (!pv)
		return -1;
	__u16 port = bpf_ntohs(our_port_be);
	if (port < c->port_lo || port > c->port_hi || seq != scan_isn(pv->mix, port) + delta)
		return -1;
	return pv->slot_base + (port - c->port_lo);
}

// scan_tcp handles a segment to a SYN-only probe: a SYN-ACK is counted and
// turned into the RST Linux sends for no socket (X2: seq = its ACK, no
// options, window 0, TTL 64, IP ID 0, DF, TOS less ECN), an RST counted
// and dropped. Anything else, or a segment no probe of ours expects,
// returns -1 for the normal path.
static __always_inline int scan_tcp(struct xdp_md *ctx, void *l3, struct tcphdr *th, void *end, struct xdpc_pair_key *k, int v6)
{
	if ((void *)(th + 1) > end || !th->ack || th->fin)
		return -1;
	int synack = th->syn && !th->rst;
	if (!synack && !(th->rst && !th->syn))
		return -1;
	long slot = scan_match(k, th->dest, bpf_ntohl(th->ack_seq), 1);
	if (slot < 0)
		return -1;
	int first = scan_first(slot);
	if (!synack) {
		count(first ? XDPC_CNT_SCAN_REFUSED : XDPC_CNT_SCAN_DUPLICATE);
		count(XDPC_CNT_DROP_SCAN_ANSWER);
		return XDP_DROP;
	}
	count(first ? XDPC_CNT_SCAN_ESTABLISHED : XDPC_CNT_SCAN_DUPLICATE);
	struct ethhdr *eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	unsigned char mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	__u16 p = th->source;
	th->source = th->dest;
	th->dest = p;
	th->seq = th->ack_seq;
	th->ack_seq = 0;
	((__u8 *)th)[12] = 5 << 4;
	((__u8 *)th)[13] = 0x04; // RST
	th->window = 0;
	th->urg_ptr = 0;
	th->check = 0;
	__u64 s = 0;
	if (v6) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		struct in6_addr a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons(20);
		ip6->hop_limit = 64;
		ip6->flow_lbl[0] &= 0xcf; // traffic class without its ECN bits
		__u32 *w = (void *)&ip6->saddr;
#pragma unroll
		for (int i = 0; i < 8; i++)
			s += (w[i] & 0xffff) + (w[i] >> 16);
		s += bpf_htons(IPPROTO_TCP) + bpf_htons(20);
	} else {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return XDP_DROP;
		__u32 a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tos &= ~3;
		ip->tot_len = bpf_htons(40);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000);
		ip->ttl = 64;
		ip->check = 0;
		__u16 *iw = (void *)ip;
		__u64 is = 0;
#pragma unroll
		for (int i = 0; i < 10; i++)
			is += iw[i];
		ip->check = fold(is);
		s += (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) + (ip->daddr & 0xffff);
		s += bpf_htons(IPPROTO_TCP) + bpf_htons(20);
	}
	__u16 *tw = (void *)th;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += tw[i];
	th->check = fold(s);
	long want = (long)((void *)th - (void *)eth) + 20;
	long have = (long)(end - (void *)eth);
	if (have > want && bpf_xdp_adjust_tail(ctx, (int)(want - have)))
		return XDP_DROP;
	count(XDPC_CNT_TX_SCAN_RST);
	return XDP_TX;
}

// scan_icmp_answer counts an ICMP error quoting a SYN-only probe (quote:
// its IP addresses in k, our port, its sequence number) and drops it.
static __always_inline int scan_icmp_answer(struct xdpc_pair_key *k, __u16 our_port_be, __u32 seq, __u32 idx)
{
	long slot = scan_match(k, our_port_be, seq, 0);
	if (slot < 0)
		return -1;
	if (scan_first(slot)) {
		__u32 i = idx & (XDPC_SCAN_ICMP - 1);
		__u64 *v = bpf_map_lookup_elem(&scan_icmp, &i);
		if (v)
			*v += 1;
	} else {
		count(XDPC_CNT_SCAN_DUPLICATE);
	}
	count(XDPC_CNT_DROP_SCAN_ANSWER);
	return XDP_DROP;
}

static __always_inline int scan_on(void)
{
	struct xdpc_config *c = config_of();
	return c && c->scan;
}

static __always_inline void key6(struct xdpc_pair_key *k, struct in6_addr *ours, struct in6_addr *peer, __u16 peer_port)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->ours, ours, 16);
	__builtin_memcpy(k->peer, peer, 16);
	k->peer_port = peer_port;
}

static __always_inline void key4(struct xdpc_pair_key *k, __u32 ours, __u32 peer, __u16 peer_port)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->ours[10] = k->ours[11] = 0xff;
	k->peer[10] = k->peer[11] = 0xff;
	__builtin_memcpy(&k->ours[12], &ours, 4);
	__builtin_memcpy(&k->peer[12], &peer, 4);
	k->peer_port = peer_port;
}

static __always_inline int malformed(__u32 flags)
{
	if (flags & XDPC_ADDR_DEDICATED) {
		count(XDPC_CNT_DROP_MALFORMED);
		return XDP_DROP;
	}
	return pass(XDPC_CNT_PASS_MALFORMED);
}

// do_tcp steers a TCP segment to one of our addresses (flags f): ours when
// the destination port is in our range.
static __always_inline int do_tcp(struct xdp_md *ctx, void *l4, void *end, __u32 f)
{
	struct tcphdr *th = l4;
	if ((void *)(th + 1) > end)
		return malformed(f);
	if (!port_ours(th->dest))
		return pass(XDPC_CNT_PASS_OTHER_PORT);
	return redirect(ctx, XDPC_CNT_REDIRECT_TCP, f);
}

static __always_inline int do_ipv4(struct xdp_md *ctx, void *l3, void *end)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > end || ip->version != 4)
		return pass(XDPC_CNT_PASS_MALFORMED);
	__u32 daddr = ip->daddr;
	__u32 *flags = bpf_map_lookup_elem(&addrs4, &daddr);
	if (!flags)
		return pass(XDPC_CNT_PASS_NOT_LOCAL);
	__u32 f = *flags;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || ihl > 60)
		return malformed(f);
	if (ip->frag_off & bpf_htons(0x3fff))
		return pass(XDPC_CNT_PASS_OTHER_PROTO); // fragments are the kernel's
	void *l4 = l3 + ihl;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if (scan_on() && (void *)(th + 1) <= end) {
			struct xdpc_pair_key k;
			key4(&k, daddr, ip->saddr, th->source);
			int r = scan_tcp(ctx, l3, th, end, &k, 0);
			if (r >= 0)
				return r;
		}
		return do_tcp(ctx, l4, end, f);
	}
	if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *ic = l4;
		if ((void *)(ic + 1) > end)
			return malformed(f);
		if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED && ic->type != ICMP_PARAMETERPROB)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		struct iphdr *in = (void *)(ic + 1);
		if ((void *)(in + 1) > end)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		__u32 iihl = in->ihl * 4;
		if (in->protocol != IPPROTO_TCP || in->saddr != daddr || iihl < sizeof(*in) || iihl > 60)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		__u16 *ports = (void *)in + iihl;
		if ((void *)(ports + 4) > end) // sport, dport, seq: RFC 792's 8 bytes
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		if (!port_ours(ports[0]))
			return pass(XDPC_CNT_PASS_OTHER_PORT);
		if (scan_on()) {
			struct xdpc_pair_key k;
			key4(&k, in->saddr, in->daddr, ports[1]);
			__u32 seq = ((__u32)bpf_ntohs(ports[2]) << 16) | bpf_ntohs(ports[3]);
			int r = scan_icmp_answer(&k, ports[0], seq, (__u32)ic->type * 16 + (ic->code & 15));
			if (r >= 0)
				return r;
		}
		return redirect(ctx, XDPC_CNT_REDIRECT_ICMP, f);
	}
	return pass(XDPC_CNT_PASS_OTHER_PROTO);
}

static __always_inline int do_ipv6(struct xdp_md *ctx, void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return pass(XDPC_CNT_PASS_MALFORMED);
	struct in6_addr dst = ip6->daddr;
	void *l4 = ip6 + 1;
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		struct icmp6hdr *ic = l4;
		if ((void *)(ic + 1) > end)
			return pass(XDPC_CNT_PASS_MALFORMED);
		if (ic->icmp6_type == 135) { // neighbour solicitation: target follows
			struct in6_addr *target = (void *)(ic + 1);
			if ((void *)(target + 1) > end)
				return pass(XDPC_CNT_PASS_MALFORMED);
			struct in6_addr t = *target;
			__u32 *tf = bpf_map_lookup_elem(&addrs6, &t);
			if (tf && (*tf & XDPC_ADDR_DEDICATED))
				return redirect(ctx, XDPC_CNT_REDIRECT_ND, *tf);
			return pass(XDPC_CNT_PASS_NOT_LOCAL);
		}
	}
	__u32 *flags = bpf_map_lookup_elem(&addrs6, &dst);
	if (!flags)
		return pass(XDPC_CNT_PASS_NOT_LOCAL);
	__u32 f = *flags;
	if (ip6->nexthdr == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if (scan_on() && (void *)(th + 1) <= end && (void *)(ip6 + 1) <= end) {
			struct xdpc_pair_key k;
			struct in6_addr src = ip6->saddr;
			key6(&k, &dst, &src, th->source);
			int r = scan_tcp(ctx, l3, th, end, &k, 1);
			if (r >= 0)
				return r;
		}
		return do_tcp(ctx, l4, end, f);
	}
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		struct icmp6hdr *ic = l4;
		// Checked again: the verifier forgets packet ranges across the map
		// lookups above.
		if ((void *)(ic + 1) > end)
			return malformed(f);
		if (ic->icmp6_type < 1 || ic->icmp6_type > 4)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		struct ipv6hdr *in = (void *)(ic + 1);
		if ((void *)(in + 1) > end)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		__u16 *ports = (void *)(in + 1);
		if ((void *)(ports + 4) > end || in->nexthdr != IPPROTO_TCP)
			return pass(XDPC_CNT_PASS_OTHER_PROTO);
		if (!port_ours(ports[0]))
			return pass(XDPC_CNT_PASS_OTHER_PORT);
		if (scan_on()) {
			struct xdpc_pair_key k;
			struct in6_addr qs = in->saddr, qd = in->daddr;
			key6(&k, &qs, &qd, ports[1]);
			__u32 seq = ((__u32)bpf_ntohs(ports[2]) << 16) | bpf_ntohs(ports[3]);
			int r = scan_icmp_answer(&k, ports[0], seq, 256 + (__u32)(ic->icmp6_type & 15) * 16 + (ic->icmp6_code & 15));
			if (r >= 0)
				return r;
		}
		return redirect(ctx, XDPC_CNT_REDIRECT_ICMP, f);
	}
	return pass(XDPC_CNT_PASS_OTHER_PROTO);
}

static __always_inline int do_arp(struct xdp_md *ctx, void *l3, void *end)
{
	// Ethernet/IPv4 ARP: htype, ptype, hlen, plen, op, sha[6], spa[4], tha[6], tpa[4]
	__u8 *a = l3;
	if ((void *)(a + 28) > end)
		return pass(XDPC_CNT_PASS_MALFORMED);
	__u32 tpa;
	__builtin_memcpy(&tpa, a + 24, 4);
	__u32 *flags = bpf_map_lookup_elem(&addrs4, &tpa);
	if (!flags || !(*flags & XDPC_ADDR_DEDICATED))
		return pass(XDPC_CNT_PASS_NOT_LOCAL); // the kernel answers for its own
	return redirect(ctx, XDPC_CNT_REDIRECT_ARP, *flags);
}

// set_len makes a request's packet len bytes long (0, or the helper's
// error).
static __always_inline long set_len(struct xdp_md *ctx, __u32 len)
{
	int have = ctx->data_end - ctx->data;
	return have == (int)len ? 0 : bpf_xdp_adjust_tail(ctx, (int)len - have);
}

// syngen makes the SYNs of a SYN-only run in the kernel: run with
// BPF_PROG_RUN in live-frame mode (a XDPC_REQ_SYNGEN request), it gives each
// frame the next source port of the pair, the probe's ISN (scan_isn), the
// TSval of now, an IP ID (IPv4) or flow label (IPv6), and checksums from
// the template's sums, as tcp.SYNTemplate.Stamp does; it clears the
// probe's answered bit and sends it to the interface (tx_dev). No socket
// buffer is made per SYN, which is what lets one core out-send the
// scanners. A page comes back holding whatever its frame became (a
// reflector's SYN-ACK, our RST): each SYN is copied whole from the
// template, after the request (xdp.h).
static __always_inline int syngen(struct xdp_md *ctx, struct xdpc_config *c)
{
	__u32 k = 0;
	struct xdpc_gen *g = bpf_map_lookup_elem(&scan_gen, &k);
	if (!g || c->port_hi < c->port_lo || g->len > XDPC_GEN_FRAME)
		return XDP_ABORTED;
	if (set_len(ctx, g->len))
		return XDP_ABORTED;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *d = data;
#pragma unroll
	for (int i = 0; i < XDPC_GEN_FRAME; i++) {
		if (d + i + 1 > (__u8 *)end)
			break;
		d[i] = g->frame[i];
	}
	__u32 nports = (__u32)c->port_hi - c->port_lo + 1;
	__u32 idx = g->next % nports;
	g->next++;
	__u16 port = c->port_lo + idx;
	__u32 seq = scan_isn(g->mix, port);
	struct tcphdr *th = data + (g->tcp_off & 0xff);
	if ((void *)(th + 1) > end)
		return XDP_ABORTED;
	th->source = bpf_htons(port);
	th->seq = bpf_htonl(seq);
	__u64 s = (__u64)g->tcp_sum + port + (seq >> 16) + (seq & 0xffff) + g->flags_word;
	if (g->ts_off) {
		__u32 *ts = data + (g->ts_off & 0xff);
		if ((void *)(ts + 1) > end)
			return XDP_ABORTED;
		__u32 tsval = (__u32)(bpf_ktime_get_ns() / 1000000) + g->ts_add;
		*ts = bpf_htonl(tsval);
		s += (tsval >> 16) + (tsval & 0xffff);
	}
	th->check = bpf_htons(fold(s));
	if (g->v6) {
		__u32 *w = data + (g->ip_off & 0xff);
		if ((void *)(w + 1) > end)
			return XDP_ABORTED;
		*w = (*w & bpf_htonl(0xfff00000)) | bpf_htonl(seq & 0xfffff);
	} else {
		struct iphdr *ip = data + (g->ip_off & 0xff);
		if ((void *)(ip + 1) > end)
			return XDP_ABORTED;
		__u16 id = seq >> 16;
		ip->id = bpf_htons(id);
		ip->check = bpf_htons(fold((__u64)g->ip_sum + id));
	}
	__u32 slot = g->slot_base + idx;
	__u32 w = slot / 64;
	__u64 *v = bpf_map_lookup_elem(&scan_answered, &w);
	if (v)
		__sync_fetch_and_and(v, ~(1ULL << (slot % 64)));
	count(XDPC_CNT_SCAN_SENT);
	return bpf_redirect_map(&tx_dev, 0, XDP_DROP);
}

// tx_failed counts a request that made no frame and drops its page.
static __always_inline int tx_failed(void)
{
	count(XDPC_CNT_TX_LIVE_FAILED);
	return XDP_DROP;
}

// tx_live sends the next frame of the worker's TX slots (XDPC_REQ_TX):
// the page becomes the slot's frame and goes to the interface. A request
// past the slots the worker wrote is dropped and counted.
static __always_inline int tx_live(struct xdp_md *ctx, __u32 worker)
{
	if (worker >= XDPC_MAX_QUEUES)
		return XDP_ABORTED;
	struct xdpc_tx_cursor *cur = bpf_map_lookup_elem(&tx_cursors, &worker);
	if (!cur || cur->next >= XDPC_TX_SLOTS)
		return tx_failed();
	__u32 i = worker * XDPC_TX_SLOTS + cur->next;
	cur->next++;
	struct xdpc_tx_slot *sl = bpf_map_lookup_elem(&tx_slots, &i);
	if (!sl)
		return tx_failed();
	__u32 len = sl->len;
	if (len < sizeof(struct ethhdr) || len > XDPC_TX_DATA)
		return tx_failed();
	if (set_len(ctx, len))
		return tx_failed();
	if (bpf_xdp_store_bytes(ctx, 0, sl->data, len))
		return tx_failed();
	count(XDPC_CNT_TX_LIVE);
	return bpf_redirect_map(&tx_dev, 0, XDP_DROP);
}

// do_request serves a request from user space (xdp.h): a frame on
// loopback, where the program is not attached, carrying this load's token;
// any other loopback frame is a reused page of a request's pool.
static __always_inline int do_request(struct xdp_md *ctx, struct xdpc_config *c)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xdpc_req *r = (void *)(eth + 1);
	if ((void *)(r + 1) > end || eth->h_proto != bpf_htons(XDPC_REQ_ETHERTYPE) || c->token == 0 || r->token != c->token)
		return tx_failed();
	__u32 kind = r->kind, worker = r->worker;
	// The frame goes after the request (xdp.h).
	if (bpf_xdp_adjust_head(ctx, XDPC_REQ_ROOM))
		return XDP_ABORTED;
	if (kind == XDPC_REQ_SYNGEN)
		return syngen(ctx, c);
	if (kind == XDPC_REQ_TX)
		return tx_live(ctx, worker);
	return XDP_ABORTED;
}

#define LOOPBACK_IFINDEX 1

SEC("xdp")
int xdpconnect(struct xdp_md *ctx)
{
	// Unattached (ifindex 0) the program takes every frame for the
	// wire's: tests feed it so.
	if (ctx->ingress_ifindex == LOOPBACK_IFINDEX) {
		struct xdpc_config *c = config_of();
		if (c && c->ifindex != 0 && c->ifindex != LOOPBACK_IFINDEX)
			return do_request(ctx, c);
	}
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return pass(XDPC_CNT_PASS_MALFORMED);
	__u16 proto = eth->h_proto;
	void *l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		__u16 *vlan = l3; // TCI, encapsulated protocol
		if ((void *)(vlan + 2) > end)
			return pass(XDPC_CNT_PASS_MALFORMED);
		proto = vlan[1];
		l3 = vlan + 2;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return do_ipv4(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return do_ipv6(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_ARP))
		return do_arp(ctx, l3, end);
	return pass(XDPC_CNT_PASS_OTHER_ETHERTYPE);
}
