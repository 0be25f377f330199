package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/xdpconnect/xdpconnect/l7"
)

// requestFlags are request mode's settings as a command line gives
// them: the request (a literal with escapes, a file, or an HTTP method and
// path) and how its response ends. The zero value is no request mode.
type requestFlags struct {
	// Literal is the request with \r \n \t \\ \xHH escapes; File names a
	// file holding it; HTTP is "METHOD /path" (GET and HEAD build a
	// request with Host and Connection: close). One of them at most.
	Literal, File, HTTP string
	// Host is the HTTP Host header (default: the first target, with its
	// port unless 80).
	Host string
	// A raw request's response ends after ExpectBytes bytes, or at Expect
	// (a substring), or at the server's close (neither set). An HTTP
	// response ends as its headers frame it.
	ExpectBytes uint64
	Expect      string
	// MaxResponse bounds a response (0: l7.DefaultMaxResponse).
	MaxResponse uint64
	// KeepAlive asks for Connection: keep-alive in an HTTP request (a
	// plan with several requests per connection).
	KeepAlive bool
}

// Spec is the request and its reading for targets, or nil without request
// mode.
func (r requestFlags) Spec(targets []netip.AddrPort) (*l7.Spec, error) {
	n := 0
	for _, v := range []string{r.Literal, r.File, r.HTTP} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		if r.Host != "" || r.ExpectBytes > 0 || r.Expect != "" || r.MaxResponse > 0 {
			return nil, usageError("--host, --expect, --expect-bytes and --max-response need a request (--http, --request or --request-file)")
		}
		return nil, nil
	case n > 1:
		return nil, usageError("give one of --http, --request and --request-file")
	case r.MaxResponse > 1<<31:
		return nil, usageError("--max-response %d: at most 2 GiB", r.MaxResponse)
	case r.ExpectBytes > 0 && r.Expect != "":
		return nil, usageError("give --expect or --expect-bytes, not both")
	}
	s := &l7.Spec{MaxResponse: uint32(r.MaxResponse)}
	var err error
	switch {
	case r.HTTP != "":
		if r.ExpectBytes > 0 || r.Expect != "" {
			return nil, usageError("--http responses end as HTTP frames them: no --expect or --expect-bytes")
		}
		method, path, ok := strings.Cut(r.HTTP, " ")
		if !ok {
			return nil, usageError("--http %q: want METHOD /path, e.g. \"GET /\"", r.HTTP)
		}
		host := r.Host
		if host == "" && len(targets) > 0 {
			host = hostOf(targets[0])
		}
		if s.Request, err = l7.HTTPRequest(method, path, host, r.KeepAlive); err != nil {
			return nil, usageError("--http: %v", err)
		}
		s.HEAD = method == "HEAD"
	case r.Literal != "":
		if s.Request, err = l7.Unescape(r.Literal); err != nil {
			return nil, usageError("--request: %v", err)
		}
	default:
		if s.Request, err = readRequestFile(r.File); err != nil {
			return nil, usageError("--request-file %s: %v", r.File, err)
		}
	}
	if r.HTTP == "" {
		if r.Host != "" {
			return nil, usageError("--host goes with --http (a raw request carries its own)")
		}
		s.Framing = l7.Close
		switch {
		case r.ExpectBytes > 0:
			s.Framing, s.ExpectBytes = l7.Bytes, uint32(min(r.ExpectBytes, 1<<32-1))
		case r.Expect != "":
			s.Framing = l7.Substring
			if s.Expect, err = l7.Unescape(r.Expect); err != nil {
				return nil, usageError("--expect: %v", err)
			}
		}
	}
	if err := s.Validate(); err != nil {
		return nil, usageError("request: %v", err)
	}
	return s, nil
}

// readRequestFile reads a request from a regular file of at most
// l7.MaxRequest bytes: a FIFO would wait for a writer, /dev/zero never
// end, and a request that large cannot be sent anyway.
func readRequestFile(name string) ([]byte, error) {
	// Non-blocking: opening a FIFO would otherwise wait for a writer.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file: give a file holding the request")
	}
	b, err := io.ReadAll(io.LimitReader(f, l7.MaxRequest+1))
	switch {
	case err != nil:
		return nil, err
	case len(b) > l7.MaxRequest:
		return nil, fmt.Errorf("larger than %d KiB, the largest request", l7.MaxRequest>>10)
	case len(b) == 0:
		return nil, errors.New("empty: a request needs bytes")
	}
	return b, nil
}

// hostOf is the Host header for target t.
func hostOf(t netip.AddrPort) string {
	h := t.Addr().String()
	if t.Addr().Is6() {
		h = "[" + h + "]"
	}
	if t.Port() != 80 {
		h += ":" + strconv.Itoa(int(t.Port()))
	}
	return h
}
