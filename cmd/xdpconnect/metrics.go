package main

import (
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/metrics"
)

// serveMetrics serves the session's metrics on addr.
func serveMetrics(addr string, s *session) (string, func(), error) {
	src := metrics.Sources{Engine: s.engine, Sockets: s.socks}
	if s.prog != nil {
		prog := s.prog
		src.XDP = func() ([]metrics.XDPCounter, error) {
			c, err := prog.Counters()
			if err != nil {
				return nil, err
			}
			out := make([]metrics.XDPCounter, 0, bpf.NumCounters)
			for i, v := range c {
				k := bpf.Counter(i)
				out = append(out, metrics.XDPCounter{Action: k.Action(), Reason: k.String(), Value: v})
			}
			return out, nil
		}
	}
	return metrics.Serve(addr, src)
}
