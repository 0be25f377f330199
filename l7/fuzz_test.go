package l7

import (
	"testing"
)

// FuzzResponse reads untrusted bytes as a response: it never panics, and
// where the bytes are cut between segments never changes the outcome, nor
// does reading them a byte at a time (which the bulk reading of lines and
// names nobody reads cannot take in bulk).
func FuzzResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK|Content-Length: 5||hello",
		"HTTP/1.1 200 OK|Transfer-Encoding: chunked||5;a=b|hello|0|T: 1||",
		"HTTP/1.1 100 Continue||HTTP/1.0 404 Not Found\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK|Connection: close||body",
		"HTTP/1.1 301 Moved|Content-Length: 99999999999||",
	} {
		f.Add([]byte(crlf.Replace(seed)), uint16(7), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, head bool) {
		s := spec(t, Spec{HEAD: head, MaxResponse: 4096, MaxHeader: 512})
		if r := readingsAgree(t, s, b, int(cut)%(len(b)+1)); r == More {
			var whole Response
			whole.Feed(s, b)
			if c := whole.Close(s); c != Done && c != ErrTruncated {
				t.Fatalf("close: %v", c)
			}
		}
	})
}

// readingsAgree reads b whole, cut in two at cut, and a byte at a time,
// and fails unless the three agree: outcome, status and, while the
// response goes on, the reader's state. The fast paths read a status
// line's fixed part or a header name at once; reading a byte at a time
// takes neither, so it is their oracle. (A skipped line's path it does
// take, a byte a time: TestFastPathsAgree checks that one's limit against
// its definition.)
func readingsAgree(t *testing.T, s *Spec, b []byte, cut int) Result {
	t.Helper()
	var whole, split Response
	r1 := whole.Feed(s, b)
	r2 := split.Feed(s, b[:cut])
	if r2 == More {
		r2 = split.Feed(s, b[cut:])
	}
	if r1 != r2 || whole.Status != split.Status || whole.Got != split.Got && r1 == More {
		t.Fatalf("%q whole: %v status %d; cut at %d: %v status %d", b, r1, whole.Status, cut, r2, split.Status)
	}
	var bytewise Response
	r3 := More
	for i := 0; i < len(b) && r3 == More; i++ {
		r3 = bytewise.Feed(s, b[i:i+1])
	}
	if r3 != r1 || bytewise.Status != whole.Status || r1 == More && bytewise != whole {
		t.Fatalf("%q whole: %v status %d %+v; a byte at a time: %v status %d %+v", b, r1, whole.Status, whole, r3, bytewise.Status, bytewise)
	}
	return r1
}
