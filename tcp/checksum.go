package tcp

import "encoding/binary"

// Sum adds b to the running one's-complement sum (RFC 1071) as big-endian
// 16-bit words; an odd trailing byte is padded with zero. The result is not
// folded, so sums of several pieces can be added together; callers must only
// split b at even offsets.
func Sum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		s += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	// Fold 64 -> 32 bits keeping the end-around carries.
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	return uint32(s)
}

// Fold reduces a running sum to 16 bits and complements it: the value to put
// in a checksum field.
func Fold(s uint32) uint16 {
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}

// Checksum is the Internet checksum of b.
func Checksum(b []byte) uint16 { return Fold(Sum(b, 0)) }

// PseudoSum4 is the sum of the IPv4 pseudo-header (RFC 9293 §3.1).
func PseudoSum4(src, dst [4]byte, proto uint8, length uint16) uint32 {
	return uint32(binary.BigEndian.Uint16(src[:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[:])) + uint32(binary.BigEndian.Uint16(dst[2:])) +
		uint32(proto) + uint32(length)
}

// PseudoSum6 is the sum of the IPv6 pseudo-header (RFC 8200 §8.1).
func PseudoSum6(src, dst *[16]byte, proto uint8, length uint32) uint32 {
	s := Sum(src[:], 0)
	s = Sum(dst[:], s)
	return s + (length >> 16) + (length & 0xffff) + uint32(proto)
}

// UpdateChecksum returns checksum hc after a 16-bit word of the covered data
// changed from old to new, by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func UpdateChecksum(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	return Fold(s)
}

// UpdateChecksum32 is UpdateChecksum for a 32-bit field.
func UpdateChecksum32(hc uint16, old, new uint32) uint16 {
	s := uint32(^hc) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) + new>>16 + new&0xffff
	return Fold(s)
}
