// Package fastpath is xdpconnect's engine: per-queue workers that perform
// the Linux active open (package tcp) over AF_XDP sockets (package xsk, or
// any [Link]) at the highest rate the machine allows, and keep exact books.
//
// # Data flow
//
// Each worker owns one Link (one RX/TX queue), a hashed timer wheel, a slice
// of the source port space and its SYN templates. Its loop reads the clock
// once, receives a batch, runs the state machine on each frame, fires due
// timers, generates new SYNs under its token bucket and concurrency limit,
// and transmits everything as one batch with at most one wakeup.
//
// # The connection table
//
// State lives in one flat, preallocated table indexed by (target, source
// address, source port), 64 bytes an entry. A SYN-ACK may arrive on any
// queue; the worker that receives it takes the entry with a compare-and-swap
// of its state word (a busy bit), completes the handshake, and hands the
// entry back to its owner through a single-producer ring when the owner must
// act (free the port, arm a timer). Timers are cancelled lazily: an expiry
// that finds another state does nothing. No locks, no allocation on the
// packet path.
//
// # Books
//
// Every attempt ends once: attempted = established + failed + in flight,
// always, per errno (the kernel's: ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,
// ...). Workers count in plain per-worker variables and publish them
// periodically; [Engine.Snapshot] sums the published values, so readers
// (progress line, Prometheus) never touch the hot path.
//
// # Concurrency
//
// Engine methods are safe for concurrent use. Links are used by their worker
// goroutine only.
package fastpath
