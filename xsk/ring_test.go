package xsk

import (
	"strings"
	"testing"
	"unsafe"
)

// testRing is a ring of 8 entries over plain memory, its positions
// started near the 32-bit wrap so that every sum and difference crosses it.
func testRing(start uint32) (*ring, *uint32, *uint32) {
	var prod, cons, flags uint32 = start, start, 0
	entries := make([]uint64, 8)
	r := &ring{producer: &prod, consumer: &cons, flags: &flags, entries: unsafe.Pointer(&entries[0]), mask: 7, size: 8, cachedProd: start, cachedCons: start}
	return r, &prod, &cons
}

// The producer side: free slots are the size less what the consumer has
// not taken yet, refreshed from the shared consumer only when short.
func TestRingReserve(t *testing.T) {
	r, prod, cons := testRing(^uint32(0) - 2)
	if n := r.reserve(5); n != 5 {
		t.Fatalf("empty ring reserved %d of 5", n)
	}
	r.submit(5)
	if *prod != r.cachedProd || *prod != 2 {
		t.Fatalf("producer %d after 5 from %d", *prod, ^uint32(0)-2)
	}
	if n := r.reserve(5); n != 3 {
		t.Fatalf("5 of 8 in use: reserved %d, want 3", n)
	}
	*cons += 4 // the kernel took 4
	if n := r.reserve(5); n != 5 {
		t.Fatalf("after the consumer took 4: reserved %d, want 5 (cache refreshed)", n)
	}
	if n := r.reserve(2); n != 2 || r.cachedCons != *cons {
		t.Fatalf("reserved %d of 2, cached consumer %d (shared %d)", n, r.cachedCons, *cons)
	}
}

// The consumer side: available entries are what the producer published
// beyond what was taken, refreshed only when short.
func TestRingPeek(t *testing.T) {
	r, prod, cons := testRing(^uint32(0) - 1)
	if n := r.peek(4); n != 0 {
		t.Fatalf("empty ring: %d available", n)
	}
	*prod += 6 // the kernel published 6
	if n := r.peek(4); n != 4 {
		t.Fatalf("6 published: peeked %d of 4", n)
	}
	r.release(4)
	if *cons != r.cachedCons || *cons != 2 {
		t.Fatalf("consumer %d after releasing 4", *cons)
	}
	if n := r.peek(4); n != 2 {
		t.Fatalf("2 left: peeked %d of 4", n)
	}
	*r.addr(r.cachedCons) = 42
	if *r.addr(r.cachedCons + 8) != 42 {
		t.Fatal("positions 8 apart are not the same entry")
	}
	r.desc(1).Len = 7
	if r.desc(9).Len != 7 || r.desc(2).Len != 0 {
		t.Fatal("descriptors not masked by the ring size")
	}
}

// Options: zeros take the defaults (the RX ring the ring's size, half the
// frames for TX), sizes must be powers of two, frames 2 or 4 KiB, at least
// a ring of frames, and TX frames leave some for RX.
func TestOptionsFill(t *testing.T) {
	o := Options{}
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	d := DefaultOptions()
	if o.NumFrames != d.NumFrames || o.FrameSize != d.FrameSize || o.RingSize != d.RingSize || o.RxRingSize != d.RingSize ||
		o.TxFrames != d.NumFrames/2 || o.BusyPollBudget != d.BusyPollBudget {
		t.Fatalf("defaults: %+v", o)
	}
	o = Options{NumFrames: 256, FrameSize: 4096, RingSize: 64, RxRingSize: 32, TxFrames: 255, BusyPollBudget: 8}
	if err := o.fill(); err != nil || o.RxRingSize != 32 || o.TxFrames != 255 || o.BusyPollBudget != 8 {
		t.Fatalf("given values: %+v, %v", o, err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{NumFrames: 100}, "powers of two"},
		{Options{RingSize: -4}, "powers of two"},
		{Options{RxRingSize: 48}, "powers of two"},
		{Options{FrameSize: 1024}, "2048 or 4096"},
		{Options{FrameSize: 8192}, "2048 or 4096"},
		{Options{NumFrames: 64, RingSize: 128}, "at least RingSize"},
		{Options{NumFrames: 64, RingSize: 64, TxFrames: 64}, "TxFrames 64 out of 1..63"},
		{Options{NumFrames: 64, RingSize: 64, TxFrames: -1}, "TxFrames -1 out of 1..63"},
	} {
		if err := c.o.fill(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	// Exactly a ring of frames, and all but one for TX, are allowed.
	o = Options{NumFrames: 64, RingSize: 64, TxFrames: 63}
	if err := o.fill(); err != nil {
		t.Fatalf("%+v: %v", o, err)
	}
}

// A frame of 2048 bytes receives Ethernet frames of MTU 1778 whole (the
// kernel's 256 bytes of headroom and 14 of Ethernet header), 4096 above.
func TestFrameSizeFor(t *testing.T) {
	if FrameSizeFor(1500) != 2048 || FrameSizeFor(1778) != 2048 || FrameSizeFor(1779) != 4096 || FrameSizeFor(9000) != 4096 {
		t.Fatalf("%d %d %d %d", FrameSizeFor(1500), FrameSizeFor(1778), FrameSizeFor(1779), FrameSizeFor(9000))
	}
	if MaxRxMTU(2048) != 1778 || MaxRxMTU(4096) != 3826 {
		t.Fatalf("MaxRxMTU %d %d", MaxRxMTU(2048), MaxRxMTU(4096))
	}
}
