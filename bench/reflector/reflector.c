//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// A stateless XDP SYN-ACK reflector for benchmarks: a SYN to the configured
// port (IPv4 or IPv6) is turned, in place, into the SYN-ACK a Linux server
// would send (MSS 1460, 1440 over IPv6, SACK-permitted, timestamps echoing
// the SYN's TSval, window scale 7) with a cookie ISN, and sent back with
// XDP_TX. Other TCP to the
// port (the client's ACK, RST, FIN) is dropped. Mode "drop" drops
// everything (a sink for TX benchmarks); mode "pass" passes everything (the
// pass program a receiving veth needs for XDP_TX frames to arrive); mode
// "count" counts the SYNs to the port and drops everything (a SYN sink).
// Mode "http" reflects SYNs too and answers a segment with data (a
// request) with a canned HTTP/1.1 response and FIN, a FIN without data
// with its ACK: request mode's ceiling without a server in the way.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual BSD/GPL";

#define MODE_REFLECT 0
#define MODE_DROP 1
#define MODE_PASS 2
#define MODE_COUNT 3 // count SYNs (3) and drop everything: a SYN sink
#define MODE_HTTP 4  // reflect SYNs; answer requests with RESPONSE and FIN

// The canned response: an even length keeps the checksum loop on words.
#define RESPONSE "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define RESPONSE_LEN 40

struct refl_config {
	__u32 mode;
	__u16 port;     // host order; 0: any
	__u16 drop_pct; // SYNs dropped at random, percent (loss emulation)
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct refl_config);
} rconfig SEC(".maps");

// 0: SYN-ACKs sent, 1: dropped, 2: passed, 3: SYNs seen (any layout),
// 4: responses sent (http mode), 5: FINs acknowledged (http mode)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} rcounters SEC(".maps");

static __always_inline int done(__u32 idx, int action)
{
	__u64 *v = bpf_map_lookup_elem(&rcounters, &idx);
	if (v)
		*v += 1;
	return action;
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

// syn_ack turns the SYN th (options at opt, the pseudo-header's address
// sum in s) into the SYN-ACK, in place; a4 is a word of the client's
// address for the cookie ISN.
static __always_inline int syn_ack(struct tcphdr *th, __u8 *opt, void *end, __u64 s, __u32 a4, __u16 mss)
{
	if ((void *)(opt + 20) > end)
		return done(1, XDP_DROP);
	// Options must be MSS(4) SACKOK(2) TS(10) NOP WS(3): the TSval is at 8.
	if (opt[0] != 2 || opt[4] != 4 || opt[6] != 8 || opt[16] != 1 || opt[17] != 3)
		return done(1, XDP_DROP);
	__u16 p = th->source;
	th->source = th->dest;
	th->dest = p;
	__u32 seq = bpf_ntohl(th->seq);
	// A cookie ISN from the 4-tuple, as a stateless server would.
	__u32 iss = (a4 * 2654435761u) ^ (p << 16) ^ seq ^ 0x5a5a5a5au;
	th->ack_seq = bpf_htonl(seq + 1);
	th->seq = bpf_htonl(iss);
	th->ack = 1;
	th->window = bpf_htons(65160);
	// MSS; SACK-perm; TS: TSecr = their TSval, TSval = ours; WS 7.
	opt[2] = mss >> 8;
	opt[3] = mss & 0xff;
	__builtin_memcpy(opt + 12, opt + 8, 4);
	__u32 tsval = bpf_htonl(iss >> 8);
	__builtin_memcpy(opt + 8, &tsval, 4);
	opt[19] = 7;
	// TCP checksum over the pseudo-header and the 40-byte header.
	th->check = 0;
	s += bpf_htons(IPPROTO_TCP) + bpf_htons(40);
	__u16 *w = (void *)th;
#pragma unroll
	for (int i = 0; i < 20; i++)
		s += w[i];
	th->check = fold(s);
	return done(0, XDP_TX);
}

static __always_inline void swap_mac(struct ethhdr *eth)
{
	unsigned char mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
}

// respond_len looks at a request (or a FIN) th with a NOP NOP TS header:
// the canned response with FIN answers a request, an ACK a bare FIN,
// nothing a bare ACK (dropped). seglen is the TCP
// segment's length from the IP header. It returns the answer's payload
// length (-1: no answer); the caller resizes the frame to it with
// bpf_xdp_adjust_tail and rebuilds IP after it (http_v4/v6).
static __always_inline int respond_len(struct tcphdr *th, void *end, __u32 seglen, __u32 *payload)
{
	if (th->doff != 8)
		return -1;
	__u8 *opt = (void *)(th + 1);
	if ((void *)(opt + 12) > end || opt[0] != 1 || opt[1] != 1 || opt[2] != 8)
		return -1;
	if (seglen < 32)
		return -1;
	*payload = seglen - 32;
	if (*payload == 0 && !th->fin)
		return -1; // a bare ACK needs no answer
	return *payload > 0 ? RESPONSE_LEN : 0;
}

// answer writes the answer's TCP header and payload (the frame already
// has its new size) and its checksum over the pseudo-header sum s.
static __always_inline int answer(struct tcphdr *th, void *end, __u64 s, __u32 payload, int fin, int out)
{
	__u8 *opt = (void *)(th + 1);
	if ((void *)(opt + 12) > end || (out > 0 && (void *)(opt + 12 + RESPONSE_LEN) > end))
		return done(1, XDP_DROP);
	__u16 p = th->source;
	th->source = th->dest;
	th->dest = p;
	__u32 seq = bpf_ntohl(th->seq);
	__u32 ack = bpf_ntohl(th->ack_seq);
	th->seq = bpf_htonl(ack);
	th->ack_seq = bpf_htonl(seq + payload + fin);
	th->fin = out > 0;
	th->psh = out > 0;
	th->ack = 1;
	th->window = bpf_htons(502);
	// TSecr = their TSval; TSval = the SYN-ACK's (PAWS needs it no older).
	__builtin_memcpy(opt + 8, opt + 4, 4);
	__u32 tsval = bpf_htonl((ack - 1) >> 8);
	__builtin_memcpy(opt + 4, &tsval, 4);
	__u16 tl = 32;
	if (out > 0) {
		__builtin_memcpy(opt + 12, RESPONSE, RESPONSE_LEN);
		tl += RESPONSE_LEN;
	}
	th->check = 0;
	s += bpf_htons(IPPROTO_TCP) + bpf_htons(tl);
	__u16 *w = (void *)th;
#pragma unroll
	for (int i = 0; i < (32 + RESPONSE_LEN) / 2; i++)
		if (i < tl / 2)
			s += w[i];
	th->check = fold(s);
	return done(out > 0 ? 4 : 5, XDP_TX);
}

// http_v4 answers a request or FIN in an IPv4 frame (ihl 5).
static __always_inline int http_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > end)
		return done(1, XDP_DROP);
	__u32 payload, seglen = bpf_ntohs(ip->tot_len) - 20;
	int fin = th->fin;
	int out = respond_len(th, end, seglen, &payload);
	if (out < 0)
		return done(1, XDP_DROP);
	int delta = (int)(14 + 20 + 32 + out) - (int)(end - data);
	if (bpf_xdp_adjust_tail(ctx, delta))
		return done(1, XDP_DROP);
	data = (void *)(long)ctx->data, end = (void *)(long)ctx->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	th = (void *)(ip + 1);
	if ((void *)(th + 1) > end)
		return done(1, XDP_DROP);
	swap_mac(eth);
	__u32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->tot_len = bpf_htons(20 + 32 + out);
	ip->ttl = 64;
	ip->check = 0;
	__u64 c = 0;
	__u16 *w = (void *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		c += w[i];
	ip->check = fold(c);
	__u64 s = (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) + (ip->daddr & 0xffff);
	return answer(th, end, s, payload, fin, out);
}

// http_v6 answers a request or FIN in an IPv6 frame.
static __always_inline int http_v6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip6 + 1);
	if ((void *)(th + 1) > end)
		return done(1, XDP_DROP);
	__u32 payload, seglen = bpf_ntohs(ip6->payload_len);
	int fin = th->fin;
	int out = respond_len(th, end, seglen, &payload);
	if (out < 0)
		return done(1, XDP_DROP);
	int delta = (int)(14 + 40 + 32 + out) - (int)(end - data);
	if (bpf_xdp_adjust_tail(ctx, delta))
		return done(1, XDP_DROP);
	data = (void *)(long)ctx->data, end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = (void *)(eth + 1);
	th = (void *)(ip6 + 1);
	if ((void *)(th + 1) > end)
		return done(1, XDP_DROP);
	swap_mac(eth);
	struct in6_addr a = ip6->saddr;
	ip6->saddr = ip6->daddr;
	ip6->daddr = a;
	ip6->hop_limit = 64;
	ip6->payload_len = bpf_htons(32 + out);
	__u64 s = 0;
	__u16 *w = (void *)&ip6->saddr;
#pragma unroll
	for (int i = 0; i < 16; i++)
		s += w[i];
	return answer(th, end, s, payload, fin, out);
}

// tcp_in says what to do with a TCP segment to the port before it is
// reflected: < 0 go on, else the action.
static __always_inline int tcp_in(struct refl_config *cfg, struct tcphdr *th)
{
	if (cfg->port && th->dest != bpf_htons(cfg->port))
		return done(2, XDP_PASS);
	// Everything else to the port is ours: the client's ACK, RST and FIN
	// need no answer, and must not reach the server's kernel (which would
	// answer them with RSTs). In http mode requests and FINs are answered.
	if (cfg->mode == MODE_HTTP && th->ack && !th->syn && !th->rst)
		return -2;
	if (!th->syn || th->ack || th->rst)
		return done(1, XDP_DROP);
	done(3, 0); // a SYN: the neutral measure of SYN-only tools
	// The SYN layout Linux (and xdpconnect) sends: 40 bytes TCP with 20
	// option bytes.
	if (th->doff != 10)
		return done(1, XDP_DROP);
	if (cfg->drop_pct && bpf_get_prandom_u32() % 100 < cfg->drop_pct)
		return done(1, XDP_DROP);
	return -1;
}

SEC("xdp")
int reflector(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 k = 0;
	struct refl_config *cfg = bpf_map_lookup_elem(&rconfig, &k);
	if (!cfg || cfg->mode == MODE_PASS)
		return done(2, XDP_PASS);
	if (cfg->mode == MODE_DROP)
		return done(1, XDP_DROP);
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return done(2, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct tcphdr *th = (void *)(ip6 + 1);
		if ((void *)(th + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return done(2, XDP_PASS);
		int act = tcp_in(cfg, th);
		if (act == -2)
			return http_v6(ctx);
		if (act >= 0)
			return act;
		if (cfg->mode == MODE_COUNT)
			return done(1, XDP_DROP);
		swap_mac(eth);
		struct in6_addr a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->hop_limit = 64;
		__u64 s = 0;
		__u16 *w = (void *)&ip6->saddr;
#pragma unroll
		for (int i = 0; i < 16; i++)
			s += w[i];
		return syn_ack(th, (void *)(th + 1), end, s, a.in6_u.u6_addr32[3], 1440);
	}
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > end)
		return done(2, XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return done(2, XDP_PASS);
	int act = tcp_in(cfg, th);
	if (act == -2)
		return http_v4(ctx);
	if (act >= 0)
		return act;
	if (cfg->mode == MODE_COUNT)
		return done(1, XDP_DROP);
	swap_mac(eth);
	__u32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a; // swapping keeps the IP checksum
	__u64 s = (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) + (ip->daddr & 0xffff);
	return syn_ack(th, (void *)(th + 1), end, s, a, 1460);
}
