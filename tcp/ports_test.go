package tcp

import (
	"math/rand/v2"
	"testing"
)

// pickScan is Pick's scan as the kernel writes it, a port at a time: the
// oracle for the word-at-a-time scan.
func pickScan(set *PortSet, offset uint32) (port uint16, i uint32, ok bool) {
	n := uint32(set.Hi) - uint32(set.Lo) + 1
	for pass := uint32(0); pass < 2; pass++ {
		off := offset + pass
		for i := uint32(0); i < n; i += 2 {
			port := uint16(uint32(set.Lo) + (off+i)%n)
			if !set.Busy(port) {
				return port, i, true
			}
		}
	}
	return 0, 0, false
}

// P1/P2: the bitmap scan finds the port the kernel's loop finds, and
// advances the perturbation by the same step, over ranges of both
// parities (an odd range wraps onto the other parity), fills from empty to
// full, and offsets in every word position.
func TestPickScanMatchesKernelLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 3000 {
		lo := uint16(1024 + rng.IntN(40000))
		hi := lo + uint16(rng.IntN(300))
		if trial%5 == 0 {
			hi = lo + uint16(rng.IntN(3))
		}
		set := NewPortSet(lo, hi)
		fill := rng.Float64()
		if trial%7 == 0 {
			fill = 1
		}
		for p := uint32(lo); p <= uint32(hi); p++ {
			if rng.Float64() < fill {
				set.Set(uint16(p), true)
			}
		}
		n := uint32(hi) - uint32(lo) + 1
		span := max(n&^1, 1)
		offset := rng.Uint32() % span &^ 1
		want, wantI, wantOK := pickScan(set, offset)
		// Pick with a picker whose hash lands on offset: drive the scan
		// directly through the same code as Pick.
		pp := &PortPicker{rnd: 7}
		got, gotI, gotOK := pp.scan(set, offset, n)
		if got != want || gotOK != wantOK || gotOK && gotI != wantI {
			t.Fatalf("range %d-%d offset %d fill %.2f: got port %d (i %d, %v), kernel loop %d (i %d, %v)", lo, hi, offset, fill, got, gotI, gotOK, want, wantI, wantOK)
		}
	}
}
