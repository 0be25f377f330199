package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strings"
)

// MaxFileBytes bounds a report file: a report with every section and a
// long series is a few MiB, and nothing larger is read into memory.
const MaxFileBytes = 64 << 20

// InputError says a report read from a file cannot be used: the file, the
// field (its JSON path; empty for the whole file) and why. The command
// exits 2 for it: nothing was merged.
type InputError struct {
	File   string
	Field  string
	Reason string
	Err    error // the decoder's error, if any
}

func (e *InputError) Error() string {
	var at []string
	if e.File != "" {
		at = append(at, e.File)
	}
	if e.Field != "" {
		at = append(at, "field "+e.Field)
	}
	return strings.Join(append(at, e.Reason), ": ")
}

// Unwrap is the decoder's error, if any.
func (e *InputError) Unwrap() error { return e.Err }

// String is "i/N".
func (s *ShardInfo) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Check says whether r can be a report this version wrote: its format,
// its shard numbers, and its books (attempted = established + failed + in
// flight; requests = complete + failed + in flight; no more connections
// ended than were established). The error is an *InputError without a
// file.
func (r *Report) Check() error {
	bad := func(field, f string, a ...any) error {
		return &InputError{Field: field, Reason: fmt.Sprintf(f, a...)}
	}
	if r.Format != FormatVersion {
		return bad("format", "format %d, want %d: written by another version of xdpconnect; merge reports of one version", r.Format, FormatVersion)
	}
	if s := r.Shard; s != nil {
		switch {
		case s.Count < 1 || s.Count > MaxShards:
			return bad("shard.count", "%d shards: want 1..%d", s.Count, MaxShards)
		case s.Index < 0 || s.Index >= s.Count:
			return bad("shard.index", "index %d of %d shards: want 0..%d", s.Index, s.Count, s.Count-1)
		}
	}
	f, okF := total(r.Failed)
	if sum, ok := addAll(r.Established, f, r.InFlight); !okF || !ok || sum != r.Attempted {
		return bad("attempted", "attempted %d is not established %d + failed %d + in flight %d: the books do not balance (an edited or truncated report?)",
			r.Attempted, r.Established, f, r.InFlight)
	}
	if ended, ok := addAll(r.Closed, r.Reset); !ok || ended > r.Established {
		return bad("closed", "closed %d + reset %d is more than established %d", r.Closed, r.Reset, r.Established)
	}
	if q := r.Requests; q != nil {
		f, okF := total(q.Failed)
		if sum, ok := addAll(q.Completed, f, q.InFlight); !okF || !ok || sum != q.Requests {
			return bad("requests.requests", "requests %d is not complete %d + failed %d + in flight %d", q.Requests, q.Completed, f, q.InFlight)
		}
	}
	return nil
}

// total is the sum of counts by name; false if it overflows (only a
// hand-edited report has such counts).
func total(m map[string]uint64) (uint64, bool) {
	var vs []uint64
	for _, v := range m {
		vs = append(vs, v)
	}
	return addAll(vs...)
}

// addAll is the sum of vs; false if it overflows.
func addAll(vs ...uint64) (uint64, bool) {
	var s, carry uint64
	for _, v := range vs {
		if s, carry = bits.Add64(s, v, 0); carry != 0 {
			return 0, false
		}
	}
	return s, true
}

// ReadFile reads and checks one JSON report. Every failure is an
// *InputError naming the file and, where one is at fault, the field.
func ReadFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{File: path, Reason: errors.Unwrap(err).Error(), Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, &InputError{File: path, Reason: "not a regular file"}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &InputError{File: path, Reason: err.Error(), Err: err}
	}
	if len(b) > MaxFileBytes {
		return nil, &InputError{File: path, Reason: fmt.Sprintf("larger than %d MiB: not a report", MaxFileBytes>>20)}
	}
	r, err := Decode(b)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			ie.File = path
		}
		return nil, err
	}
	return r, nil
}

// Decode reads one JSON report from b and checks it (Check).
func Decode(b []byte) (*Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return nil, &InputError{Field: te.Field, Reason: fmt.Sprintf("a JSON %s where a %s belongs", te.Value, te.Type), Err: err}
		case errors.As(err, &se):
			return nil, &InputError{Reason: fmt.Sprintf("not JSON at byte %d: %v", se.Offset, se), Err: err}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &InputError{Reason: "empty or cut short: not a whole report", Err: err}
		}
		return nil, &InputError{Reason: err.Error(), Err: err}
	}
	if dec.More() {
		return nil, &InputError{Reason: "more than one JSON value: give one report per file"}
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// MergeFiles reads the JSON reports of a run's shards (ReadFile) and merges
// them (Merge).
func MergeFiles(paths []string) (*Report, error) {
	rs := make([]*Report, 0, len(paths))
	for _, p := range paths {
		r, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		if r.Shard == nil || r.RunID == "" {
			return nil, &InputError{File: p, Field: "shard", Reason: "no run ID and shard: not a shard's report (run with --shard i/N)"}
		}
		rs = append(rs, r)
	}
	return Merge(rs)
}
