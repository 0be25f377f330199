package report

import "testing"

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
