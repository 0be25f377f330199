package report

import (
	"flag"
	"os"
	"path/filepath"
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

var update = flag.Bool("update", false, "rewrite the golden files of report/testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (-update rewrites it):\n%s", path, got)
	}
}

// fullReport has every part the text shows, each count distinct, so a
// section said from the wrong field or under the wrong condition shows.
func fullReport() *Report {
	return &Report{
		Attempted: 10007, Established: 9001, Failed: map[string]uint64{"ECONNREFUSED": 503, "ETIMEDOUT": 497}, InFlight: 6,
		Retransmits: 41, DurationSeconds: 2.5, CPS: 3600.4, AttemptRate: 4002.8, AskedRate: 4000,
		RTT:     Quantiles{P50: 0.000123, P90: 0.000456, P99: 0.00789, P999: 0.0123, Max: 0.0456},
		RSTSent: 8999, RSTReceived: 503, Closed: 8990, Reset: 11, TimeWait: 3,
		Drops: map[string]uint64{"bad_checksum": 2}, TxDropped: 5, PartialChecksums: 7, RxStamped: 9001, Workers: 2, CloseMode: "rst",
		XSK:             &XSKStats{RxDropped: 13, RxRingFull: 17, RxFillRingEmpty: 12},
		Saturation:      &Saturation{Saturated: true, HeldBack: 19, Limits: []Limit{{Reason: "late", Detail: "late words"}, {Reason: "tx-drop", Detail: "drop words"}}},
		QueuedDown:      map[string]uint64{"syn": 23, "ack": 29},
		EstablishedDown: 31,
		Requests: &RequestReport{Requests: 9001, Completed: 8900, Failed: map[string]uint64{"timeout": 90}, InFlight: 11, Retransmits: 37, WindowProbes: 43,
			Status: map[string]uint64{"200": 8800, "503": 100}, PerSecond: 3560, BytesPerSecond: 3.65e6, ResponseBytes: 9123456,
			TTFB:      Quantiles{P50: 0.0002, P90: 0.0003, P99: 0.0009, Max: 0.002},
			TTLB:      Quantiles{P50: 0.00025, P90: 0.00035, P99: 0.00095, Max: 0.0025},
			TTLBSched: Quantiles{P50: 0.0004, P90: 0.0005, P99: 0.0011, Max: 0.003}},
		KernelSYNs: &KernelSYNs{Duplicates: 47},
		Targets: []TargetReport{{Target: "198.18.0.2:80", Attempted: 6000, Established: 5500, Failed: 500, RTT: Quantiles{P50: 0.0001, P99: 0.007}},
			{Target: "[2001:2::2]:80", Attempted: 4007, Established: 3501, Failed: 500, RTT: Quantiles{P50: 0.00015, P99: 0.008}}},
		Families:  []FamilyReport{{Family: "ipv4", Attempted: 6000, Established: 5500, Failed: 500}, {Family: "ipv6", Attempted: 4007, Established: 3501, Failed: 500}},
		TCP:       &Settings{Timestamps: 1, SACK: true, WindowScaling: true, WindowScale: 7, Window: 64240, MSS: 1460, TTL: 64, SynRetries: 6},
		TCP6:      &Settings{Timestamps: 2, Window: 65535, MSS: 1440, ECN: true, TTL: 63, SynRetries: 5},
		Path:      &Path{Interface: "xc0", Kind: "veth", XDPMode: "native", SocketMode: "copy", ActiveRxQueues: 2, AllocatedRxQueues: 4},
		Diagnosis: []Finding{{Cause: "first cause", Fix: "first fix"}, {Cause: "second cause", Fix: "second fix"}},
	}
}

// The text of a report with every part, and of one with none (every
// optional line left out), equal their golden files: go test ./report
// -run TestTextGolden -update rewrites them after a change that is meant.
func TestTextGolden(t *testing.T) {
	for name, r := range map[string]*Report{
		"text-full":    fullReport(),
		"text-minimal": {Attempted: 1, Established: 1, CloseMode: "fin", Workers: 1, DurationSeconds: 0.5, CPS: 2, AttemptRate: 2, XSK: &XSKStats{}},
		// An open loop run without schedule times yet, and a saturation
		// judged without limits: neither line shows.
		// Open loop, but no schedule times: no schedule line.
		"text-open-loop-no-schedule": {Attempted: 3, Established: 3, CloseMode: "rst", Workers: 1, AskedRate: 100,
			Requests: &RequestReport{Requests: 3, Completed: 3, Status: map[string]uint64{"200": 3}}},
		"text-closed-loop": {Attempted: 3, Established: 2, Failed: map[string]uint64{"ECONNRESET": 1}, CloseMode: "hold", Workers: 1,
			Requests: &RequestReport{Requests: 2, Completed: 2, TTLBSched: Quantiles{P50: 0.001}}, Saturation: &Saturation{}},
		// TLS: 40 of 50 resumed (80.0 %), two failure causes, no SNI.
		"text-tls": {Attempted: 53, Established: 53, CloseMode: "fin", Workers: 1, TLS: &TLSReport{Handshakes: 50, Resumed: 40, PerSecond: 1234.4,
			Failed: map[string]uint64{"alert: protocol_version": 2, "timeout": 1}, HandshakeTime: Quantiles{P50: 0.0021, P90: 0.0032, P99: 0.0045, Max: 0.0061},
			Versions: map[string]uint64{"TLS 1.3": 30, "TLS 1.2": 20}, Ciphers: map[string]uint64{"TLS_AES_128_GCM_SHA256": 30, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 20},
			Groups: map[string]uint64{"X25519": 50}}, Requests: &RequestReport{Requests: 50, Completed: 50, Status: map[string]uint64{"200": 50}}},
	} {
		var b strings.Builder
		r.WriteText(&b)
		golden(t, name+".golden", b.String())
	}
}
