package tcp

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b to the running one's-complement sum (RFC 1071) as big-endian
// 16-bit words; an odd trailing byte is padded with zero. The result is not
// folded, so sums of several pieces can be added together; callers must only
// split b at even offsets.
//
// It adds 64-bit little-endian words with end-around carry and swaps the
// folded result's bytes: the sum does not depend on the byte order (RFC
// 1071 §2 B). Every received segment is summed over its payload, so this
// is the receive path's largest cost per byte.
func Sum(b []byte, initial uint32) uint32 {
	var s, c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	// The last 0..7 bytes, zero-padded on the right, as one more word.
	var t uint64
	if len(b) >= 4 {
		t = uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if len(b) >= 2 {
			t |= uint64(binary.LittleEndian.Uint16(b)) << 32
			if len(b) == 3 {
				t |= uint64(b[2]) << 48
			}
		} else if len(b) == 1 {
			t |= uint64(b[0]) << 32
		}
	} else {
		if len(b) >= 2 {
			t = uint64(binary.LittleEndian.Uint16(b))
			if len(b) == 3 {
				t |= uint64(b[2]) << 16
			}
		} else if len(b) == 1 {
			t = uint64(b[0])
		}
	}
	s, c = bits.Add64(s, t, c)
	s, c = bits.Add64(s, c, 0)
	s += c
	// Fold 64 -> 16 bits keeping the end-around carries, then swap to
	// big-endian.
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	v := uint64(bits.ReverseBytes16(uint16(s))) + uint64(initial)
	return uint32((v >> 32) + (v & 0xffffffff))
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
