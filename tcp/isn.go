package tcp

import (
	"encoding/binary"
	"math/bits"
)

// ISNGen computes initial sequence numbers and timestamp offsets as Linux
// does (I1, I4): h = SipHash-2-4(key; saddr, daddr, sport<<16|dport),
// ISS = low32(h) + (clock_ns >> 6), tsoffset = high32(h). The key plays the
// role of the kernel's per-boot net_secret; the caller supplies it (random in
// production, fixed in tests). Read-only after construction.
type ISNGen struct {
	k0, k1 uint64
}

// NewISNGen returns a generator keyed with key.
func NewISNGen(key [16]byte) *ISNGen {
	return &ISNGen{k0: binary.LittleEndian.Uint64(key[:8]), k1: binary.LittleEndian.Uint64(key[8:])}
}

// Hash4 is the 64-bit keyed hash of an IPv4 4-tuple, laid out as the kernel's
// siphash_3u32(saddr, daddr, sport<<16|dport) sees it on little-endian.
func (g *ISNGen) Hash4(src, dst [4]byte, sport, dport uint16) uint64 {
	return sipHash3u32(g.k0, g.k1, binary.LittleEndian.Uint32(src[:]), binary.LittleEndian.Uint32(dst[:]), uint32(sport)<<16|uint32(dport))
}

// Hash6 is Hash4 for an IPv6 4-tuple (V4): the kernel's
// secure_tcpv6_seq hashes both addresses and the ports the same way.
func (g *ISNGen) Hash6(src, dst *[16]byte, sport, dport uint16) uint64 {
	var b [36]byte
	copy(b[0:16], src[:])
	copy(b[16:32], dst[:])
	binary.LittleEndian.PutUint32(b[32:], uint32(sport)<<16|uint32(dport))
	return sipHash24(g.k0, g.k1, b[:])
}

// ISN is I1: the initial sequence number for hash h at clock nowNs.
func ISN(h uint64, nowNs int64) Seq { return Seq(uint32(h) + uint32(uint64(nowNs)>>6)) }

// TSOffset is I4: the per-connection timestamp offset for hash h.
func TSOffset(h uint64) uint32 { return uint32(h >> 32) }

// sipHash24 is SipHash-2-4 of b under the key (k0, k1).
func sipHash24(k0, k1 uint64, b []byte) uint64 {
	v0, v1, v2, v3 := sipInit(k0, k1)
	n := len(b)
	for len(b) >= 8 {
		m := binary.LittleEndian.Uint64(b)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		b = b[8:]
	}
	var last [8]byte
	copy(last[:], b)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipInit is SipHash's state for key (k0, k1).
func sipInit(k0, k1 uint64) (v0, v1, v2, v3 uint64) {
	return k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573
}

// sipHash3u32 is sipHash24 of the 12 bytes of a, b and c, little-endian,
// as the kernel's siphash_3u32: the same rounds without a buffer or a
// loop, for the hash every attempt makes (its ISN).
func sipHash3u32(k0, k1 uint64, a, b, c uint32) uint64 {
	v0, v1, v2, v3 := sipInit(k0, k1)
	m := uint64(b)<<32 | uint64(a)
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	m = 12<<56 | uint64(c)
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipRound is one SipRound.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
