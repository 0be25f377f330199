package bench

import (
	"math"
	"testing"
)

// Busy is all but idle and iowait, per CPU by its number (not by its line's
// place), guest time not counted twice; the share is of the time between
// two readings; the medians are per CPU.
func TestCPUBusy(t *testing.T) {
	before, err := parseCPUTimes([]byte("cpu  10 0 10 80 0 0 0 0 0 0\n" +
		"cpu1 100 0 50 800 40 5 5 0 30 0\n" +
		"cpu0 10 0 10 80 0 0 0 0 0 0\n" +
		"intr 1 2 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCPUTimes([]byte("cpu  0 0 0 0 0 0 0 0 0 0\n" +
		"cpu0 60 0 30 90 10 5 5 0 0 0\n" +
		"cpu1 190 0 60 800 40 5 5 0 90 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if before[1] != [2]uint64{160, 1000} {
		t.Fatalf("cpu1 %v, want 160 busy of 1000", before[1])
	}
	got := after.busySince(before)
	// CPU 0: 80 busy of 100; CPU 1: 100 busy of 100 (guest inside user).
	want := []float64{0.8, 1}
	if len(got) != 2 || math.Abs(got[0]-want[0]) > 1e-9 || math.Abs(got[1]-want[1]) > 1e-9 {
		t.Fatalf("busy %v, want %v", got, want)
	}
	runs := busyRuns{{0.5, 0.9}, {0.7, 1}, {0.6, 0.2}}
	if m := runs.medians(); m[0] != 0.6 || m[1] != 0.9 {
		t.Fatalf("medians %v, want [0.6 0.9]", m)
	}
	if n := busyNote([]float64{0.6, 0.995}); n != "CPU busy: client (0) 60 %, server (1) 100 %" {
		t.Fatalf("note %q", n)
	}
	if _, err := parseCPUTimes([]byte("cpu 1 2 3 4 5 6 7 8\n")); err == nil {
		t.Fatal("no per-CPU line, no error")
	}
}
