package tcp

// Sysctls are the network namespace's settings that shape an active open,
// as /proc/sys shows them. A field is Unset when its file was not there
// (an older kernel): Apply then keeps the default.
type Sysctls struct {
	Timestamps        int    // net.ipv4.tcp_timestamps: 0, 1, or 2 (no per-connection offset)
	SACK              int    // net.ipv4.tcp_sack
	WindowScaling     int    // net.ipv4.tcp_window_scaling
	ECN               int    // net.ipv4.tcp_ecn: 1 asks for ECN on our SYNs; 0 and 2 do not
	DefaultTTL        int    // net.ipv4.ip_default_ttl
	SynRetries        int    // net.ipv4.tcp_syn_retries
	SynLinearTimeouts int    // net.ipv4.tcp_syn_linear_timeouts (6.4+)
	RMem              [3]int // net.ipv4.tcp_rmem: min, default, max
	RMemMax           int    // net.core.rmem_max
	RTOMaxMs          int    // net.ipv4.tcp_rto_max_ms (6.15+)
	RTOMinUs          int    // net.ipv4.tcp_rto_min_us (6.11+)
}

// Unset marks a setting that could not be read.
const Unset = -1

// UnsetSysctls returns Sysctls with every field Unset.
func UnsetSysctls() Sysctls {
	return Sysctls{Unset, Unset, Unset, Unset, Unset, Unset, Unset, [3]int{Unset, Unset, Unset}, Unset, Unset, Unset}
}

// Apply sets p from s as Linux uses them in connect(): the SYN's options
// (S4: timestamps, SACK, window scaling), ECN (S3), the TTL (S1), the
// window-scale shift from the largest receive buffer (S6), the initial
// window from half the default one (S7), the SYN schedule (R2, R3) and
// the RTO bounds (E8). p's MSS must be set (SetMTU) first.
func (s *Sysctls) Apply(p *Params) {
	set := func(v int, f func(int)) {
		if v != Unset {
			f(v)
		}
	}
	set(s.Timestamps, func(v int) { p.Timestamps, p.TSNoOffset = v != 0, v == 2 })
	set(s.SACK, func(v int) { p.SACK = v != 0 })
	set(s.WindowScaling, func(v int) { p.WindowScaling = v != 0 })
	set(s.ECN, func(v int) { p.ECN = v == 1 })
	set(s.DefaultTTL, func(v int) { p.TTL = uint8(min(max(v, 1), 255)) })
	set(s.SynRetries, func(v int) { p.SynRetries = min(max(v, 1), 127) })
	set(s.SynLinearTimeouts, func(v int) { p.LinearTimeouts = max(v, 0) })
	set(s.RTOMaxMs, func(v int) { p.RTOMaxMs = int64(v) })
	set(s.RTOMinUs, func(v int) { p.RTOMinMs = max(int64(v)/1000, 1) })
	space := uint32(65536)
	if s.RMem[1] > 0 {
		// tcp_full_space: the default buffer's share for data at the
		// default scaling ratio (one half).
		space = uint32(s.RMem[1] / 2)
	}
	p.RcvWnd = InitialWindow(space, uint32(p.MSS))
	rmem2, rmemMax := uint32(6291456), uint32(212992)
	if s.RMem[2] > 0 {
		rmem2 = uint32(s.RMem[2])
	}
	if s.RMemMax > 0 {
		rmemMax = uint32(s.RMemMax)
	}
	p.WScale = 0
	if p.WindowScaling {
		p.WScale = WindowScale(rmem2, rmemMax, space)
	}
}
