package tcp

// Seq is a TCP sequence number; comparisons are modulo 2^32 (RFC 9293 §3.4).
type Seq uint32

// LessThan reports s < v in sequence space.
func (s Seq) LessThan(v Seq) bool { return int32(s-v) < 0 }

// LessEq reports s <= v in sequence space.
func (s Seq) LessEq(v Seq) bool { return int32(s-v) <= 0 }

// InRange reports a <= s < b in sequence space.
func (s Seq) InRange(a, b Seq) bool { return s-a < b-a }
