package xdpconnect

import (
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// The words of the packages below the façade that a user of this package
// needs, under one import: what Options and Plan take and what a run
// gives back. Each is the lower package's own type (an alias), so nothing
// is converted or copied.

// CloseMode is what a connection does after its handshake.
type CloseMode = fastpath.CloseMode

// Close modes.
const (
	// CloseRST aborts with RST|ACK at once.
	CloseRST = fastpath.CloseRST
	// CloseFIN closes gracefully (FIN, TIME-WAIT quarantine of the port).
	CloseFIN = fastpath.CloseFIN
	// CloseHold keeps the connection open until the run ends (Plan.HoldFor).
	CloseHold = fastpath.CloseHold
	// CloseSYNOnly answers the SYN-ACK with RST without completing the
	// handshake: SYN-rate runs, as scanners do.
	CloseSYNOnly = fastpath.CloseSYNOnly
)

// AttachMode is how the XDP program is attached.
type AttachMode = bpf.AttachMode

// Attach modes.
const (
	// AttachAuto tries native mode and falls back to generic mode.
	AttachAuto = bpf.AttachAuto
	// AttachNative requires native (driver) mode.
	AttachNative = bpf.AttachNative
	// AttachGeneric uses generic (SKB) mode: any device, slower.
	AttachGeneric = bpf.AttachGeneric
)

// SocketMode is how the AF_XDP sockets bind.
type SocketMode = xsk.CopyMode

// Socket modes.
const (
	// SocketAuto tries zero-copy and falls back to copy mode.
	SocketAuto = xsk.ModeAuto
	// SocketCopy binds in copy mode.
	SocketCopy = xsk.ModeCopy
	// SocketZeroCopy requires zero-copy.
	SocketZeroCopy = xsk.ModeZeroCopy
)

// Stage is one leg of a rate ramp (Plan.Stages).
type Stage = fastpath.Stage

// Request is request mode's request and how its response is read.
type Request = l7.Spec

// HTTPRequest is an HTTP/1.1 request for method and path with a Host
// header (Connection: close, or keep-alive for several requests per
// connection), read as HTTP frames its response.
func HTTPRequest(method, path, host string, keepAlive bool) (*Request, error) {
	b, err := l7.HTTPRequest(method, path, host, keepAlive)
	if err != nil {
		return nil, err
	}
	return &Request{Request: b, HEAD: method == "HEAD"}, nil
}

// Report is what a run came to (its JSON form is the command's --json).
type Report = report.Report

// Snapshot is the engine's counters at one moment (RunHooks.Progress,
// Session.Stats).
type Snapshot = fastpath.Snapshot

// Conn is a connection opened by Session.Dial.
type Conn = fastpath.Conn

// MergeFiles reads the JSON reports of a run's shards and merges them into
// one report (totals exact, latency from the merged histograms). A bad
// file is a *report.InputError naming the file and the field.
func MergeFiles(paths []string) (*Report, error) { return report.MergeFiles(paths) }
