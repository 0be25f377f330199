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

static __always_inline int port_ours(__u16 port_be)
{
	__u32 k = 0;
	struct xdpc_config *c = bpf_map_lookup_elem(&config, &k);
	if (!c)
		return 0;
	__u16 p = bpf_ntohs(port_be);
	return p >= c->port_lo && p <= c->port_hi;
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
	if (ip->protocol == IPPROTO_TCP)
		return do_tcp(ctx, l4, end, f);
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
	if (ip6->nexthdr == IPPROTO_TCP)
		return do_tcp(ctx, l4, end, f);
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

SEC("xdp")
int xdpconnect(struct xdp_md *ctx)
{
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
