package tcp

import (
	"math/rand/v2"
	"testing"
)

// Sum folds to RFC 1071's sum for every length (each tail of 0-7 bytes
// past the 8-byte words, and past the 32-byte blocks) and any initial sum.
func TestSumMatchesRFC1071(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 300)
	for n := range len(b) {
		for range 20 {
			for i := range b[:n] {
				b[i] = byte(rng.Uint32())
			}
			init := rng.Uint32() & 0x3ffff
			if got, want := Fold(Sum(b[:n], init)), ^refSum(b[:n], init); got != want {
				t.Fatalf("%d bytes, initial %#x: checksum %#04x, RFC 1071 %#04x", n, init, got, want)
			}
		}
	}
}

// IPv4.Encode's checksum, summed from the fields, verifies over the header
// it wrote, whatever the fields.
func TestIPv4EncodeChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h := make(IPv4, IPv4HdrLen)
	for range 2000 {
		f := IPv4Fields{TOS: uint8(rng.Uint32()), TotalLen: uint16(rng.Uint32()), ID: uint16(rng.Uint32()), DF: rng.IntN(2) == 0,
			TTL: uint8(rng.Uint32()), Protocol: uint8(rng.Uint32())}
		for i := range 4 {
			f.Src[i], f.Dst[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		h.Encode(&f)
		if c := Checksum(h); c != 0 {
			t.Fatalf("%+v: header sums to %#04x", f, c)
		}
	}
}

// A ReplyTemplate builds the frame Build builds, byte for byte, for any
// segment that is not a SYN's (and its checksums verify: both share the
// TCP encoder), in both families, with and without DF
// (C5), and refuses what it cannot build (a SYN's options, another TOS or
// TTL) rather than build it wrong.
func TestReplyTemplateMatchesBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	payload := make([]byte, 600)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want, got := make([]byte, 2048), make([]byte, 2048)
	for trial := range 4000 {
		p := Path{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, byte(trial)}, DstPort: uint16(rng.Uint32()),
			V6: trial%2 == 1, NoDF: trial%3 == 0, Src: [4]byte{198, 18, 0, byte(trial)}, Dst: [4]byte{198, 19, byte(trial >> 8), 2}}
		p.Src6[0], p.Src6[15], p.Dst6[0], p.Dst6[14] = 0x20, byte(trial), 0x20, byte(rng.Uint32())
		tos, ttl := uint8(rng.IntN(3))*4, uint8(rng.IntN(2))*64
		var tpl ReplyTemplate
		tpl.Reset(&p, tos, ttl)
		r := Reply{Flags: Flags(rng.Uint32()) &^ FlagSYN, Seq: Seq(rng.Uint32()), Ack: Seq(rng.Uint32()), Window: uint16(rng.Uint32()),
			IPID: uint16(rng.Uint32()), TOS: tos, TTL: ttl, TS: rng.IntN(2) == 0, TSVal: rng.Uint32(), TSEcr: rng.Uint32(),
			DSACK: rng.IntN(4) == 0, SackL: Seq(rng.Uint32()), SackR: Seq(rng.Uint32()), Payload: payload[:rng.IntN(len(payload))]}
		if ttl == 0 && rng.IntN(2) == 0 {
			r.TTL = 64 // the default, said
		}
		p.SrcPort, p.FlowLabel = uint16(rng.Uint32()), rng.Uint32()&0xfffff
		n := Build(want, &p, &r)
		if m := tpl.Build(got, p.SrcPort, p.FlowLabel, &r); m != n || string(got[:m]) != string(want[:n]) {
			t.Fatalf("trial %d (v6 %v, no DF %v): template built %d bytes %x, Build %d bytes %x", trial, p.V6, p.NoDF, m, got[:m], n, want[:n])
		}
		var pk Packet
		if k := ParseWith(got[:n], &pk, 0); k != KindTCP || pk.Seg.Seq != r.Seq || len(pk.Payload) != len(r.Payload) {
			t.Fatalf("trial %d (v6 %v): the frame built does not parse back (%v, %v): %x", trial, p.V6, k, pk.Reason, got[:n])
		}
		r.TOS ^= 4
		if tpl.Build(got, p.SrcPort, p.FlowLabel, &r) != 0 {
			t.Fatalf("trial %d: built a segment of another TOS", trial)
		}
		r.TOS ^= 4
		r.SYNOpts = &Params{}
		if tpl.Build(got, p.SrcPort, p.FlowLabel, &r) != 0 {
			t.Fatalf("trial %d: built a SYN's options", trial)
		}
		r.SYNOpts, r.TTL = nil, 1
		if tpl.Build(got, p.SrcPort, p.FlowLabel, &r) != 0 {
			t.Fatalf("trial %d: built a segment of another TTL", trial)
		}
	}
}

// I1: the ISN's hash without a buffer is SipHash-2-4 of the kernel's
// 12 bytes (saddr, daddr, sport<<16|dport), for any tuple and key.
func TestHash4IsSipHashOfTheTuple(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 5000 {
		var key [16]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		g := NewISNGen(key)
		var src, dst [4]byte
		for i := range 4 {
			src[i], dst[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		sport, dport := uint16(rng.Uint32()), uint16(rng.Uint32())
		msg := append(append(src[:], dst[:]...), byte(dport), byte(dport>>8), byte(sport), byte(sport>>8))
		if got, want := g.Hash4(src, dst, sport, dport), sipHash24(g.k0, g.k1, msg); got != want {
			t.Fatalf("%v %v %d %d: %#x, SipHash-2-4 %#x", src, dst, sport, dport, got, want)
		}
	}
}
