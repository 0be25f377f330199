package l7

import (
	"bytes"
	"strings"
	"testing"
)

func spec(t testing.TB, s Spec) *Spec {
	t.Helper()
	if s.Request == nil {
		s.Request = []byte("GET / HTTP/1.1\r\n\r\n")
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return &s
}

// read feeds resp in pieces of n bytes (all at once for n 0), then the
// close if closed, and returns the result and the status.
func read(s *Spec, resp string, n int, closed bool) (Result, uint16) {
	var r Response
	res := More
	b := []byte(resp)
	for len(b) > 0 && res == More {
		k := len(b)
		if n > 0 {
			k = min(n, len(b))
		}
		res = r.Feed(s, b[:k])
		b = b[k:]
	}
	if res == More && closed {
		res = r.Close(s)
	}
	return res, r.Status
}

var crlf = strings.NewReplacer("|", "\r\n")

// TestHTTPFraming reads responses the way nginx and other servers frame
// them, and broken ones, whole and split at every byte.
func TestHTTPFraming(t *testing.T) {
	big := strings.Repeat("x", 70000)
	cases := []struct {
		name   string
		resp   string
		closed bool // the server closes after resp
		head   bool
		want   Result
		status uint16
	}{
		{"content-length 0", "HTTP/1.1 200 OK|Content-Length: 0||", false, false, Done, 200},
		{"content-length", "HTTP/1.1 200 OK|Server: nginx|Content-Length: 5||hello", false, false, Done, 200},
		{"content-length mixed case and OWS", "HTTP/1.1 404 Not Found|content-LENGTH:  \t3 |x: y||abc", false, false, Done, 404},
		{"bare LF lines", "HTTP/1.0 200 OK\nContent-Length: 2\n\nhi", false, false, Done, 200},
		{"names that only begin as ours", "HTTP/1.1 200 OK|Content-Lengths: 1|Transfer-Encodingx: chunked|Content-Length: 3||abc", false, false, Done, 200},
		{"names that are ours cut short", "HTTP/1.1 200 OK|Content-Lengt: 1|Transfer-Encod: chunked||abc", true, false, Done, 200},
		{"no reason phrase", "HTTP/1.1 204|Content-Length: 9||", false, false, Done, 204},
		{"large body", "HTTP/1.1 200 OK|Content-Length: 70000||" + big, false, false, Done, 200},
		{"body incomplete", "HTTP/1.1 200 OK|Content-Length: 6||hello", false, false, More, 200},
		{"body cut by close", "HTTP/1.1 200 OK|Content-Length: 6||hello", true, false, ErrTruncated, 200},
		{"chunked", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||5|hello|1a;ext=1|abcdefghijklmnopqrstuvwxyz|0||", false, false, Done, 200},
		{"chunked with trailers", "HTTP/1.1 200 OK|Transfer-Encoding: gzip, Chunked||3|abc|0|X-T: 1||", false, false, Done, 200},
		{"chunked over content-length", "HTTP/1.1 200 OK|Content-Length: 100|Transfer-Encoding: chunked||1|a|0||", false, false, Done, 200},
		{"chunked not last is not chunked", "HTTP/1.1 200 OK|Transfer-Encoding: chunked, gzip||1|a|0||", true, false, Done, 200},
		{"chunked incomplete", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||5|hel", true, false, ErrTruncated, 200},
		{"bad chunk size", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||zz|", false, false, ErrMalformed, 200},
		{"missing chunk CRLF", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||1|ab|0||", false, false, ErrMalformed, 200},
		{"until close", "HTTP/1.1 200 OK|Connection: close||anything", true, false, Done, 200},
		{"until close, not closed", "HTTP/1.1 200 OK||anything", false, false, More, 200},
		{"HEAD ignores the length", "HTTP/1.1 200 OK|Content-Length: 612||", false, true, Done, 200},
		{"304 has no body", "HTTP/1.1 304 Not Modified|Content-Length: 612||", false, false, Done, 304},
		{"100 continue then 200", "HTTP/1.1 100 Continue||HTTP/1.1 200 OK|Content-Length: 1||x", false, false, Done, 200},
		{"garbage status line", "SSH-2.0-OpenSSH_9.2|", false, false, ErrMalformed, 0},
		{"HTTP/2 preface", "HTTP/2 200|", false, false, ErrMalformed, 0},
		{"status with letters", "HTTP/1.1 2x0 OK|", false, false, ErrMalformed, 0},
		{"status 099", "HTTP/1.1 099 OK|", false, false, ErrMalformed, 0},
		{"HTTP/1.2", "HTTP/1.2 200 OK|", false, false, ErrMalformed, 0},
		{"no space after the version", "HTTP/1.1_200 OK|", false, false, ErrMalformed, 0},
		{"status ending in a tab", "HTTP/1.1 200\tOK|", false, false, ErrMalformed, 0},
		{"status 599, digits 0-9", "HTTP/1.1 599 X|Content-Length: 0||", false, false, Done, 599},
		{"status 190 is interim", "HTTP/1.1 190 X||HTTP/1.1 201 Y|Content-Length: 0||", false, false, Done, 201},
		{"101 has no body", "HTTP/1.1 101 Switching|Upgrade: x||", false, false, Done, 101},
		{"upper-case coding names", "HTTP/1.1 200 OK|TRANSFER-ENCODING: CHUNKED||1|a|0||", false, false, Done, 200},
		{"coding that only starts like chunked", "HTTP/1.1 200 OK|Transfer-Encoding: chunky||x", true, false, Done, 200},
		{"chunked after a false start", "HTTP/1.1 200 OK|Transfer-Encoding: cchunked||0||", false, false, Done, 200},
		{"a longer header name", "HTTP/1.1 200 OK|Content-Lengths: 5|Content-Length: 1||x", false, false, Done, 200},
		{"a shorter header name", "HTTP/1.1 200 OK|Content-Lengt: 5|Content-Length: 1||x", false, false, Done, 200},
		{"hex chunk sizes", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||A|0123456789|f|0123456789abcde|0||", false, false, Done, 200},
		{"chunk size with a space", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||1 |a|0||", false, false, Done, 200},
		{"chunk size line without digits", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||;x|", false, false, ErrMalformed, 200},
		{"chunk size CR without digits", "HTTP/1.1 200 OK|Transfer-Encoding: chunked|||", false, false, ErrMalformed, 200},
		{"chunk data then a bare LF", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||1|a\n0||", false, false, Done, 200},
		{"trailer end without LF", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||0|\rx", false, false, ErrMalformed, 200},
		{"header end without LF", "HTTP/1.1 200 OK|\rx", false, false, ErrMalformed, 200},
		{"chunk end without LF", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||1|a\rx", false, false, ErrMalformed, 200},
		{"endless trailers", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||0|" + strings.Repeat("X-T: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|", 300), false, false, ErrTooLarge, 200},
		{"length of the limit, then the close", "HTTP/1.1 200 OK|Content-Length: 1048576||", true, false, ErrTruncated, 200},
		{"chunk of the limit, then the close", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||100000|", true, false, ErrTruncated, 200},
		{"chunk over the limit", "HTTP/1.1 200 OK|Transfer-Encoding: chunked||100001|", false, false, ErrTooLarge, 200},
		{"two lengths", "HTTP/1.1 200 OK|Content-Length: 1|Content-Length: 1||x", false, false, ErrMalformed, 200},
		{"length with letters", "HTTP/1.1 200 OK|Content-Length: 1a||x", false, false, ErrMalformed, 200},
		{"length with inner space", "HTTP/1.1 200 OK|Content-Length: 1 2||x", false, false, ErrMalformed, 200},
		{"empty length", "HTTP/1.1 200 OK|Content-Length: ||x", false, false, ErrMalformed, 200},
		{"length over the limit", "HTTP/1.1 200 OK|Content-Length: 2000000||", false, false, ErrTooLarge, 200},
		{"folded header", "HTTP/1.1 200 OK|X: a| b||", false, false, ErrMalformed, 200},
		{"space in a name", "HTTP/1.1 200 OK|Content Length: 1||", false, false, ErrMalformed, 200},
		{"endless headers", "HTTP/1.1 200 OK|" + strings.Repeat("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|", 400), false, false, ErrTooLarge, 200},
		{"closed before anything", "", true, false, ErrTruncated, 0},
		{"closed in the headers", "HTTP/1.1 200 OK|Content-Le", true, false, ErrTruncated, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := spec(t, Spec{HEAD: c.head})
			resp := crlf.Replace(c.resp)
			for _, n := range []int{0, 1, 2, 3, 7, 1448} {
				res, st := read(s, resp, n, c.closed)
				if res != c.want || st != c.status {
					t.Fatalf("in pieces of %d: %v status %d, want %v status %d", n, res, st, c.want, c.status)
				}
			}
		})
	}
}

// The header limit counts every byte of the header section, its empty
// line included: a response whose headers take exactly MaxHeader bytes is
// read, one byte more is too large; trailers count the same way.
func TestHeaderLimitExact(t *testing.T) {
	head := crlf.Replace("HTTP/1.1 200 OK|Content-Length: 0|X: ")
	for _, extra := range []int{0, 1} {
		for _, chunkedTrailer := range []bool{false, true} {
			resp := head + strings.Repeat("a", 100) + "\r\n\r\n"
			if chunkedTrailer {
				resp = crlf.Replace("HTTP/1.1 200 OK|Transfer-Encoding: chunked||0|X: ") + strings.Repeat("a", 100) + "\r\n\r\n"
			}
			s := spec(t, Spec{MaxHeader: uint32(len(resp) - extra)})
			if chunkedTrailer {
				// The size line is not a header byte: the limit covers
				// the status line, the headers and the trailers.
				s = spec(t, Spec{MaxHeader: uint32(len(resp) - len("0\r\n") - extra)})
			}
			want := Done
			if extra > 0 {
				want = ErrTooLarge
			}
			for _, n := range []int{0, 1, 7} {
				if res, _ := read(s, resp, n, false); res != want {
					t.Fatalf("limit %d (trailers %v), in pieces of %d: %v, want %v", s.MaxHeader, chunkedTrailer, n, res, want)
				}
			}
		}
	}
}

// A trailer line is not the end: the response is complete only at the
// empty line after the trailers.
func TestTrailersEnd(t *testing.T) {
	s := spec(t, Spec{})
	var r Response
	if res := r.Feed(s, []byte(crlf.Replace("HTTP/1.1 200 OK|Transfer-Encoding: chunked||0|X-T: 1|"))); res != More {
		t.Fatalf("after a trailer line: %v", res)
	}
	if res := r.Feed(s, []byte("\r\n")); res != Done {
		t.Fatalf("after the empty line: %v", res)
	}
}

// TestBytesPastTheEnd: a response is over once Done; what follows (a
// pipelined extra, a second response) does not change it, nor does the close.
func TestBytesPastTheEnd(t *testing.T) {
	s := spec(t, Spec{})
	var r Response
	if res := r.Feed(s, []byte(crlf.Replace("HTTP/1.1 200 OK|Content-Length: 1||xHTTP/1.1 500"))); res != Done {
		t.Fatalf("%v", res)
	}
	if r.Feed(s, []byte("junk")) != Done || r.Close(s) != Done || r.Status != 200 {
		t.Fatalf("a complete response changed: %v %v %d", r.Feed(s, nil), r.Close(s), r.Status)
	}
}

func TestRawFramings(t *testing.T) {
	cases := []struct {
		name   string
		s      Spec
		resp   string
		closed bool
		want   Result
	}{
		{"bytes exact", Spec{Framing: Bytes, ExpectBytes: 5}, "hello", false, Done},
		{"bytes short", Spec{Framing: Bytes, ExpectBytes: 5}, "hell", false, More},
		{"bytes short, closed", Spec{Framing: Bytes, ExpectBytes: 5}, "hell", true, ErrTruncated},
		{"substring", Spec{Framing: Substring, Expect: []byte("abab c")}, "xxabaabab ab", false, More},
		{"substring found across a restart", Spec{Framing: Substring, Expect: []byte("aab")}, "xaaab", false, Done},
		{"substring overlapping", Spec{Framing: Substring, Expect: []byte("abab")}, "abaabab", false, Done},
		{"substring missing, closed", Spec{Framing: Substring, Expect: []byte("END")}, "EN", true, ErrTruncated},
		{"substring needing two fallbacks", Spec{Framing: Substring, Expect: []byte("aabaaab")}, "aabaabaaaab", false, More},
		{"substring after fallbacks", Spec{Framing: Substring, Expect: []byte("aabaaab")}, "aabaabaaabaaab", false, Done},
		{"substring with a border", Spec{Framing: Substring, Expect: []byte("abcabd")}, "abcabcabd", false, Done},
		{"close", Spec{Framing: Close}, "anything at all", true, Done},
		{"over the limit", Spec{Framing: Close, MaxResponse: 10}, "eleven bytes", true, ErrTooLarge},
		{"at the limit", Spec{Framing: Close, MaxResponse: 10}, "ten bytes!", true, Done},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := spec(t, c.s)
			for _, n := range []int{0, 1, 2, 5} {
				if res, _ := read(s, c.resp, n, c.closed); res != c.want {
					t.Fatalf("in pieces of %d: %v, want %v", n, res, c.want)
				}
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	bad := []Spec{
		{},
		{Request: make([]byte, MaxRequest+1)},
		{Request: []byte("x"), Framing: Bytes},
		{Request: []byte("x"), Framing: Bytes, ExpectBytes: 10, MaxResponse: 5},
		{Request: []byte("x"), Framing: Substring},
		{Request: []byte("x"), Framing: Substring, Expect: make([]byte, 256)},
		{Request: []byte("x"), MaxHeader: 70000},
		{Request: []byte("x"), MaxHeader: 65536},
		{Request: []byte("x"), Framing: Bytes, ExpectBytes: 11, MaxResponse: 10},
	}
	good := []Spec{
		{Request: []byte("x"), MaxHeader: 65535},
		{Request: make([]byte, MaxRequest)},
		{Request: []byte("x"), Framing: Bytes, ExpectBytes: 10, MaxResponse: 10},
		{Request: []byte("x"), Framing: Substring, Expect: make([]byte, MaxExpect)},
	}
	for i, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("good spec %d: %v", i, err)
		}
	}
	for i, s := range bad {
		if s.Validate() == nil {
			t.Errorf("spec %d accepted", i)
		}
	}
}

func TestHTTPRequest(t *testing.T) {
	b, err := HTTPRequest("GET", "/index.html", "198.18.0.2", false)
	if err != nil {
		t.Fatal(err)
	}
	want := "GET /index.html HTTP/1.1\r\nHost: 198.18.0.2\r\nUser-Agent: xdpconnect\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if string(b) != want {
		t.Fatalf("%q", b)
	}
	// Bad bytes at either end as well as inside: a host that starts with
	// a space or a control byte is as bad as one that holds one.
	for _, bad := range [][3]string{{"GET", "index", "h"}, {"G T", "/", "h"}, {"GET", "/a b", "h"}, {"GET", "/", ""}, {"GET", "/", "h\r\nX: y"},
		{"GET", "/", " h"}, {"GET", "/", "\x01h"}, {"GET", "/", "h\n"}, {"GET", "/", "h/x"}, {"GET", "/x\x7f", "h"}} {
		if _, err := HTTPRequest(bad[0], bad[1], bad[2], false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	b, err := Unescape(`GET / HTTP/1.0\r\n\x41\\\t\r\n`)
	if err != nil || !bytes.Equal(b, []byte("GET / HTTP/1.0\r\nA\\\t\r\n")) {
		t.Fatalf("%q %v", b, err)
	}
	for bad, msg := range map[string]string{`a\`: "lone backslash", `\q`: `unknown escape \q`, `ab\x4`: "short \\x escape at byte 2",
		`abc\xzz`: "bad \\x escape at byte 3"} {
		if _, err := Unescape(bad); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", bad, err, msg)
		}
	}
}

func TestResultNames(t *testing.T) {
	for r, want := range map[Result]string{More: "more", Done: "done", ErrMalformed: "malformed", ErrTooLarge: "too large", ErrTruncated: "truncated", 5: "?", 9: "?"} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
}

// TestFeedAllocatesNothing: the reader runs per segment on the hot path.
func TestFeedAllocatesNothing(t *testing.T) {
	s := spec(t, Spec{})
	resp := []byte(crlf.Replace("HTTP/1.1 200 OK|Transfer-Encoding: chunked||5|hello|0||"))
	if n := testing.AllocsPerRun(100, func() {
		var r Response
		r.Feed(s, resp[:20])
		r.Feed(s, resp[20:])
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// The fast paths agree with reading a byte at a time (readingsAgree) on
// status lines with a wrong byte at each place of their fixed part, a
// status line that starts where an earlier segment left a partial one,
// every header limit up to the response's size and response limits around
// it, cut at every byte.
func TestFastPathsAgree(t *testing.T) {
	resps := []string{
		"HTTP/1.1 200 OK|Content-Length: 2||hi",
		"HTTP/1.0 404 Not Found|X-Long-Header-Name: v|Content-Length: 0||",
		"HTTP/1.1 100 Continue||HTTP/1.1 204 No Content||",
		"HTTP/1.1 999 X|Connection: close||body",
		"HTHTTP/1.1 200 OK|Content-Length: 0||",
		// Cut short after a line nobody reads and in a name: a header
		// section that reaches its limit exactly is not too large yet.
		"HTTP/1.1 200 OK|X-Long-Header-Name: v|",
		"HTTP/1.1 200 OK|X-Long-Header-Name",
		"HTTP/1.1 100 Continue||HTTP/1.1 200",
	}
	for _, bad := range []string{"XTTP/1.1 200", "HTTP-1.1 200", "HTTP/1.2 200", "HTTP/1.1-200", "HTTP/1.1 099", "HTTP/1.1 :00",
		"HTTP/1.1 2/0", "HTTP/1.1 2:0", "HTTP/1.1 20/", "HTTP/1.1 20:"} {
		resps = append(resps, bad+" OK|Content-Length: 0||")
	}
	for _, r := range resps {
		b := []byte(crlf.Replace(r))
		var specs []*Spec
		for limit := uint32(1); limit <= uint32(len(b))+1; limit++ {
			specs = append(specs, spec(t, Spec{MaxHeader: limit}))
		}
		for _, limit := range []uint32{uint32(len(b) - 2), uint32(len(b) - 1), uint32(len(b))} {
			specs = append(specs, spec(t, Spec{MaxResponse: limit}))
		}
		for _, s := range specs {
			for cut := 0; cut <= len(b); cut++ {
				readingsAgree(t, s, b, cut)
			}
		}
	}
	// Reading a byte at a time takes the skipped lines' path too, so the
	// limit's edge is checked against its definition: a header section
	// of exactly the limit is not too large; a byte more is.
	for _, r := range []string{"HTTP/1.1 200 OK|X-Long-Header-Name: v|", "HTTP/1.1 200 OK|X-Long-Header-Name"} {
		b := crlf.Replace(r)
		for _, n := range []int{0, 1, 5} {
			if res, _ := read(spec(t, Spec{MaxHeader: uint32(len(b))}), b, n, false); res != More {
				t.Errorf("%q at a limit of its size, in pieces of %d: %v", b, n, res)
			}
			if res, _ := read(spec(t, Spec{MaxHeader: uint32(len(b) - 1)}), b, n, false); res != ErrTooLarge {
				t.Errorf("%q at a limit a byte short, in pieces of %d: %v", b, n, res)
			}
		}
	}
}
