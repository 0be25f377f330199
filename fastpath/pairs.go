package fastpath

import "github.com/xdpconnect/xdpconnect/tcp"

// Pair is a (target, source) pair: a target with one source address of its
// family. Connections, table space and SYN templates are per pair.
type Pair struct {
	Target, Source int
	V6             bool
}

// Pairs lists c's pairs as the engine lays them out (the pair rule): each
// target with each source of its family, target by target, so a run with
// IPv4 and IPv6 targets has no pair across families.
func (c *Config) Pairs() []Pair {
	var out []Pair
	for t, tg := range c.Targets {
		for s, src := range c.Sources {
			if src.Addr.Is4() == tg.Addr.Addr().Is4() {
				out = append(out, Pair{Target: t, Source: s, V6: src.Addr.Is6()})
			}
		}
	}
	return out
}

// SYNPath is the path of p's SYNs (without a source port), and the TCP
// parameters of its family: what a SYN template of the pair is built from.
func (c *Config) SYNPath(p Pair) (tcp.Path, *tcp.Params) {
	tg, src := &c.Targets[p.Target], c.Sources[p.Source].Addr
	path := tcp.Path{SrcMAC: c.SrcMAC, DstMAC: tg.DstMAC, DstPort: tg.Addr.Port()}
	if p.V6 {
		path.V6, path.Src6, path.Dst6 = true, src.As16(), tg.Addr.Addr().As16()
		return path, &c.Params6
	}
	path.Src, path.Dst = src.As4(), tg.Addr.Addr().As4()
	return path, &c.Params
}

// Share is part i of n split count ways: the parts differ by at most one
// and add up to n exactly (a plan's count among workers or shards).
func Share(n uint64, i, count int) uint64 {
	q := n / uint64(count)
	if uint64(i) < n%uint64(count) {
		q++
	}
	return q
}
