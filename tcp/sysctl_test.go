package tcp

import (
	"testing"
)

// linuxDefaults are the settings of a fresh namespace (docs/connect.md's
// defaults), as read from /proc/sys.
func linuxDefaults() Sysctls {
	return Sysctls{Timestamps: 1, SACK: 1, WindowScaling: 1, ECN: 2, DefaultTTL: 64, SynRetries: 6, SynLinearTimeouts: 4,
		RMem: [3]int{4096, 131072, 6291456}, RMemMax: 212992, RTOMaxMs: 120000, RTOMinUs: 200000}
}

// A fresh namespace's settings, or none read at all, give the defaults.
func TestSysctlsDefaults(t *testing.T) {
	want := DefaultParams(1500, false)
	for _, s := range []Sysctls{linuxDefaults(), UnsetSysctls()} {
		p := DefaultParams(1500, false)
		s.Apply(&p)
		if p != want {
			t.Errorf("%+v applied: %+v, want %+v", s, p, want)
		}
	}
}

// synWith is the SYN (frame) built with the defaults changed by mod.
func synWith(mod func(*Sysctls)) ([]byte, Params) {
	s := linuxDefaults()
	mod(&s)
	p := DefaultParams(1500, false)
	s.Apply(&p)
	b := make([]byte, MaxSYNLen)
	n := NewSYNTemplate(&p, testPath()).Stamp(b, 40000, iss, 0x01020304, 7, false)
	return b[:n], p
}

// S1, S3, S4, S6: each setting changes the SYN as it changes Linux's.
func TestSysctlsShapeTheSYN(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Sysctls)
		opts string // the options, hex
		ttl  uint8
		ecn  bool
	}{
		{"defaults", func(*Sysctls) {}, "020405b4 0402080a 01020304 00000000 01030307", 64, false},
		{"tcp_timestamps=0", func(s *Sysctls) { s.Timestamps = 0 }, "020405b4 01010402 01030307", 64, false},
		{"tcp_sack=0", func(s *Sysctls) { s.SACK = 0 }, "020405b4 0101080a 01020304 00000000 01030307", 64, false},
		{"tcp_window_scaling=0", func(s *Sysctls) { s.WindowScaling = 0 }, "020405b4 0402080a 01020304 00000000", 64, false},
		{"tcp_rmem max 32 MiB", func(s *Sysctls) { s.RMem[2] = 33554432 }, "020405b4 0402080a 01020304 00000000 0103030a", 64, false},
		{"rmem_max 16 MiB", func(s *Sysctls) { s.RMemMax = 16777216 }, "020405b4 0402080a 01020304 00000000 01030309", 64, false},
		{"ip_default_ttl=32", func(s *Sysctls) { s.DefaultTTL = 32 }, "020405b4 0402080a 01020304 00000000 01030307", 32, false},
		{"tcp_ecn=1", func(s *Sysctls) { s.ECN = 1 }, "020405b4 0402080a 01020304 00000000 01030307", 64, true},
		{"all off", func(s *Sysctls) { s.Timestamps, s.SACK, s.WindowScaling = 0, 0, 0 }, "020405b4", 64, false},
	} {
		f, _ := synWith(tc.mod)
		ip, tcpl := decode(t, f)
		eq(t, tc.name, f[EthHdrLen+IPv4HdrLen+TCPHdrLen:], mustHex(tc.opts))
		if ip.TTL != tc.ttl || tcpl.ECE != tc.ecn || tcpl.CWR != tc.ecn || int(ip.Length) != IPv4HdrLen+TCPHdrLen+len(mustHex(tc.opts)) {
			t.Errorf("%s: TTL %d ECE %v CWR %v length %d", tc.name, ip.TTL, tcpl.ECE, tcpl.CWR, ip.Length)
		}
	}
}

// H1 with tuned buffers: 32 MiB of tcp_rmem[2] makes the ACK after the
// handshake announce 63 (64240 in units of 1024), as Linux's does; a
// larger default buffer (tcp_rmem[1]) a larger initial window, of which
// the SYN shows 65535.
func TestSysctlsWindow(t *testing.T) {
	_, p := synWith(func(s *Sysctls) { s.RMem[2] = 33554432 })
	c := &Conn{}
	p.Open(c, iss, 5000, 77, 10000)
	if v := p.Input(c, synAck(iss+1, 15000), 10010); v.Reply.Window != 63 {
		t.Fatalf("ACK window %d with window scale 10, want 63", v.Reply.Window)
	}
	f, p := synWith(func(s *Sysctls) { s.RMem[1] = 262144 })
	if _, tcpl := decode(t, f); p.RcvWnd != 89*1460 || tcpl.Window != 65535 {
		t.Fatalf("tcp_rmem[1] 256 KiB: window %d, SYN shows %d; want %d and 65535", p.RcvWnd, tcpl.Window, 89*1460)
	}
}

// R2, R3, E8, I4: the schedule and timer settings.
func TestSysctlsTimers(t *testing.T) {
	s := linuxDefaults()
	s.SynRetries, s.SynLinearTimeouts, s.RTOMaxMs, s.RTOMinUs, s.Timestamps = 2, 0, 60000, 50000, 2
	p := DefaultParams(1500, false)
	s.Apply(&p)
	if p.SynRetries != 2 || p.LinearTimeouts != 0 || p.RTOMaxMs != 60000 || p.RTOMinMs != 50 || !p.Timestamps || !p.TSNoOffset {
		t.Fatalf("applied: %+v", p)
	}
	s.SynRetries, s.RTOMinUs = 0, 10 // out of range: the kernel refuses them
	s.Apply(&p)
	if p.SynRetries != 1 || p.RTOMinMs != 1 {
		t.Fatalf("out of range: retries %d RTO min %d ms", p.SynRetries, p.RTOMinMs)
	}
}

// Buffer sizes of 0 are not Linux's (tcp_rmem's minimum is 1): they keep
// the defaults rather than announce a window of 0.
func TestSysctlsZeroBuffers(t *testing.T) {
	s := linuxDefaults()
	s.RMem, s.RMemMax = [3]int{0, 0, 0}, 0
	p := DefaultParams(1500, false)
	s.Apply(&p)
	if want := DefaultParams(1500, false); p != want {
		t.Fatalf("zero buffers: %+v, want %+v", p, want)
	}
}

// A zero rmem_max is not read as a buffer of 0: with a small tcp_rmem[2]
// the default rmem_max (208 KiB) still sets the shift (2, not 1).
func TestSysctlsZeroRMemMax(t *testing.T) {
	s := linuxDefaults()
	s.RMem[2], s.RMemMax = 65536, 0
	p := DefaultParams(1500, false)
	s.Apply(&p)
	if p.WScale != 2 {
		t.Fatalf("window scale %d, want 2 (from the default rmem_max)", p.WScale)
	}
}
