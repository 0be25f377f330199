package tcp

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// S1, S3, S4 (default row), S5, S7, S8: the SYN byte for byte.
func TestSYNGoldenDefault(t *testing.T) {
	p := DefaultParams(1500, false)
	tpl := NewSYNTemplate(&p, testPath())
	b := make([]byte, MaxSYNLen)
	n := tpl.Stamp(b, 40000, 0x01020304, 0x0a0b0c0d, 0x1234, false)
	if n != 14+20+40 {
		t.Fatalf("len %d", n)
	}
	ip := b[14:34]
	eq(t, "S1 IPv4 header (checksum aside)", append(append([]byte{}, ip[:10]...), ip[12:]...),
		mustHex("45 00 003c 1234 4000 40 06 c6120001 c6120002"))
	tcp := b[34:n]
	eq(t, "S3 TCP header (checksum aside)", append(append([]byte{}, tcp[:16]...), tcp[18:20]...),
		mustHex("9c40 1f90 01020304 00000000 a0 02 faf0 0000"))
	eq(t, "S4 options 1/1/1", tcp[20:], mustHex("020405b4 0402080a 0a0b0c0d 00000000 01030307"))
	ipv, tc := decode(t, b[:n])
	if ipv.Flags != 2 || tc.Window != 64240 || !tc.SYN || tc.ACK {
		t.Errorf("decoded %+v", tc)
	}
	lines := tshark(t, [][]byte{b[:n]}, "tcp.flags.str", "tcp.options.mss_val", "tcp.options.wscale.shift",
		"tcp.options.timestamp.tsval", "tcp.checksum.status", "ip.checksum.status", "ip.flags.df")
	if len(lines) == 0 || lines[0] != "··········S·,1460,7,168496141,2,2,1" && lines[0] != "··········S·,1460,7,168496141,1,1,1" {
		t.Errorf("tshark: %q", lines[0])
	}
}

// S4: every sysctl combination's option bytes and data offset.
func TestSYNOptionRows(t *testing.T) {
	rows := []struct {
		ts, sack, ws bool
		want         string
	}{
		{true, true, true, "020405b4 0402080a VVVVVVVV 00000000 01030307"},
		{false, true, true, "020405b4 01010402 01030307"},
		{true, false, true, "020405b4 0101080a VVVVVVVV 00000000 01030307"},
		{true, true, false, "020405b4 0402080a VVVVVVVV 00000000"},
		{false, false, true, "020405b4 01030307"},
		{false, false, false, "020405b4"},
	}
	for _, r := range rows {
		p := DefaultParams(1500, false)
		p.Timestamps, p.SACK, p.WindowScaling = r.ts, r.sack, r.ws
		b := make([]byte, MaxSYNLen)
		n := NewSYNTemplate(&p, testPath()).Stamp(b, 1, 1, 0x11223344, 1, false)
		want := mustHex(replaceV(r.want))
		eq(t, "S4 row", b[54:n], want)
		if doff := int(b[46]>>4) * 4; doff != 20+len(want) || doff != 20+p.SYNOptionsLen() {
			t.Errorf("S4 doff %d for %d option bytes", doff, len(want))
		}
		decode(t, b[:n])
	}
}

func replaceV(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == 'V' {
			out = append(out, "11223344"...)
			i += 7
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// S5, S6, S7, V4: MSS from MTU, window scale, initial window.
func TestMSSWindowScale(t *testing.T) {
	cases := []struct {
		mtu int
		v6  bool
		mss uint16
		wnd uint32
	}{
		{1500, false, 1460, 64240}, {65536, false, 65495, 65495}, {1500, true, 1440, 64800}, {1040, false, 1000, 65000},
		{200, false, 256, 65536}, // the SYN shows 65535 of it
	}
	for _, c := range cases {
		p := DefaultParams(c.mtu, c.v6)
		if p.MSS != c.mss || p.RcvWnd != c.wnd {
			t.Errorf("MTU %d v6=%v: MSS %d wnd %d, want %d %d", c.mtu, c.v6, p.MSS, p.RcvWnd, c.mss, c.wnd)
		}
	}
	if w := WindowScale(6291456, 212992, 65536); w != 7 {
		t.Errorf("S6 default W=%d, want 7", w)
	}
	if w := WindowScale(32<<20, 212992, 65536); w != 10 {
		t.Errorf("S6 tcp_rmem[2]=32MiB W=%d, want 10", w)
	}
	if w := WindowScale(8192, 8192, 8192); w != 0 {
		t.Errorf("S6 small buffer W=%d, want 0", w)
	}
}

// S9: the retransmitted SYN is byte-identical but for TSval and IP ID, and
// ECE|CWR are cleared (S3, tcp_ecn_fallback).
func TestSYNRetransmitAndECN(t *testing.T) {
	p := DefaultParams(1500, false)
	p.ECN = true
	tpl := NewSYNTemplate(&p, testPath())
	a, b := make([]byte, MaxSYNLen), make([]byte, MaxSYNLen)
	n := tpl.Stamp(a, 5555, 777, 1000, 9, false)
	tpl.Stamp(b, 5555, 777, 2000, 10, true)
	if a[47] != 0xc2 {
		t.Errorf("S3 ECN SYN flags %#x, want 0xc2", a[47])
	}
	if b[47] != 0x02 {
		t.Errorf("S9 retransmitted SYN flags %#x, want 0x02", b[47])
	}
	for i := 0; i < n; i++ {
		switch {
		case i == 18 || i == 19 || i == 24 || i == 25: // IP ID, IP checksum
		case i == 47 || i == 50 || i == 51: // flags, TCP checksum
		case i >= 62 && i < 66: // TSval
		default:
			if a[i] != b[i] {
				t.Errorf("S9 byte %d differs: %#x vs %#x", i, a[i], b[i])
			}
		}
	}
	decode(t, a[:n])
	decode(t, b[:n])
}

// S8: Stamp's incremental checksums equal a full recomputation for many
// random field values.
func TestStampChecksumMatchesFull(t *testing.T) {
	p := DefaultParams(1500, false)
	tpl := NewSYNTemplate(&p, testPath())
	b := make([]byte, MaxSYNLen)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < 20000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		n := tpl.Stamp(b, uint16(x), Seq(x>>16), uint32(x>>24), uint16(x>>40), i%2 == 0)
		if Checksum(b[14:34]) != 0 {
			t.Fatalf("IP checksum wrong at %d", i)
		}
		tc := b[34:n]
		if Fold(Sum(tc, PseudoSum4(cliIP, srvIP, ProtoTCP, uint16(len(tc))))) != 0 {
			t.Fatalf("TCP checksum wrong at %d", i)
		}
		if binary.BigEndian.Uint16(tc[0:]) != uint16(x) {
			t.Fatal("sport not stamped")
		}
	}
}

func TestChecksumReference(t *testing.T) {
	ref := func(b []byte) uint16 {
		var s uint32
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
		for s>>16 != 0 {
			s = s>>16 + s&0xffff
		}
		return ^uint16(s)
	}
	b := make([]byte, 9001)
	for i := range b {
		b[i] = byte(i*7 + i>>3)
	}
	for n := 0; n <= len(b); n += 1 + n/64 {
		if got, want := Checksum(b[:n]), ref(b[:n]); got != want {
			t.Fatalf("len %d: %#x want %#x", n, got, want)
		}
	}
	// Carries: all-ones words overflow every lane; random bytes from any
	// start (the payload is not aligned), with a running initial sum.
	ones := bytes.Repeat([]byte{0xff}, 1500)
	rnd := rand.New(rand.NewPCG(1, 2))
	r := make([]byte, 2000)
	for i := range r {
		r[i] = byte(rnd.Uint32())
	}
	for n := 0; n <= 1500; n++ {
		if got, want := Checksum(ones[:n]), ref(ones[:n]); got != want {
			t.Fatalf("ones len %d: %#x want %#x", n, got, want)
		}
		off := rnd.IntN(64)
		seg := r[off : off+n]
		init := rnd.Uint32()
		want := ^ref(seg)
		// The reference folded with init added.
		x := uint64(want) + uint64(init)
		for x>>16 != 0 {
			x = x>>16 + x&0xffff
		}
		if got := Fold(Sum(seg, init)); got != ^uint16(x) {
			t.Fatalf("random len %d off %d init %#x: %#x want %#x", n, off, init, got, ^uint16(x))
		}
	}
	// RFC 1624 incremental update equals recomputation.
	c := Checksum(b[:100])
	old := binary.BigEndian.Uint16(b[10:])
	binary.BigEndian.PutUint16(b[10:], 0xbeef)
	if got, want := UpdateChecksum(c, old, 0xbeef), Checksum(b[:100]); got != want {
		t.Fatalf("UpdateChecksum %#x want %#x", got, want)
	}
	old32 := binary.BigEndian.Uint32(b[20:])
	binary.BigEndian.PutUint32(b[20:], 0xdeadbeef)
	if got, want := UpdateChecksum32(Checksum(b[:100]), 0xdeadbeef, old32), func() uint16 {
		binary.BigEndian.PutUint32(b[20:], old32)
		return Checksum(b[:100])
	}(); got != want {
		t.Fatalf("UpdateChecksum32 %#x want %#x", got, want)
	}
}

// Parts hands the template over (to the XDP program's SYN generator):
// the timestamp's offset points at the TSval field when the SYN has one,
// and is 0 when it has none.
func TestSYNTemplateParts(t *testing.T) {
	p := DefaultParams(1500, false)
	parts := NewSYNTemplate(&p, testPath()).Parts()
	if parts.TSOff <= parts.TCPOff || parts.Frame[parts.TSOff-2] != OptTimestamp || parts.Frame[parts.TSOff-1] != 10 {
		t.Fatalf("TSOff %d in % x", parts.TSOff, parts.Frame)
	}
	p.Timestamps = false
	if parts := NewSYNTemplate(&p, testPath()).Parts(); parts.TSOff != 0 {
		t.Fatalf("no timestamps, TSOff %d", parts.TSOff)
	}
}
