// Package metrics exposes a running engine to Prometheus.
//
// A [Collector] reads the engine's published per-worker counters, the
// AF_XDP sockets' statistics and the XDP program's per-CPU counters at
// scrape time (node_exporter style): the packet path never touches
// client_golang. Metrics follow Prometheus naming (xdpconnect_ prefix,
// _total counters, base units) and carry bounded labels only: queue,
// errno, reason, action.
//
// [Serve] registers the collector, the Go runtime and process collectors on
// a registry of its own (never the global one) and serves /metrics.
package metrics
