package report

import (
	"strings"
	"testing"
)

// Byte rates and counts print in their short forms.
func TestTextHelpers(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0 B", 999: "999.0 B", 1000: "1.0 kB", 12.6e6: "12.6 MB", 2.5e9: "2.5 GB"} {
		if got := bytesHuman(v); got != want {
			t.Errorf("bytesHuman(%v) = %q, want %q", v, got, want)
		}
	}
	if bracket(nil) != "" || bracket(map[string]uint64{"A": 1, "B": 2}) != " [A=1 B=2]" {
		t.Errorf("bracket: %q %q", bracket(nil), bracket(map[string]uint64{"A": 1, "B": 2}))
	}
}

// Attempts the target held back are said, with their count, and the rate
// is called the target's; none held back, nothing is said.
func TestTextHeldBack(t *testing.T) {
	var b strings.Builder
	r := &Report{AskedRate: 25000, AttemptRate: 13890, Saturation: &Saturation{HeldBack: 33039, Late: 34}}
	r.WriteText(&b)
	if !strings.Contains(b.String(), "held back              33039 attempts of the schedule: the target answered slower than asked") ||
		strings.Contains(b.String(), "SATURATED") {
		t.Fatalf("held back not said as the target's:\n%s", b.String())
	}
	b.Reset()
	r.Saturation.HeldBack = 0
	r.WriteText(&b)
	if strings.Contains(b.String(), "held back") {
		t.Fatalf("nothing held back, yet:\n%s", b.String())
	}
}
