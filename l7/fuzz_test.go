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
		var whole, split Response
		r1 := whole.Feed(s, b)
		k := int(cut) % (len(b) + 1)
		r2 := split.Feed(s, b[:k])
		if r2 == More {
			r2 = split.Feed(s, b[k:])
		}
		if r1 != r2 || whole.Status != split.Status || whole.Got != split.Got && r1 == More {
			t.Fatalf("whole: %v status %d; cut at %d: %v status %d", r1, whole.Status, k, r2, split.Status)
		}
		var bytewise Response
		r3 := More
		for i := 0; i < len(b) && r3 == More; i++ {
			r3 = bytewise.Feed(s, b[i:i+1])
		}
		if r3 != r1 || bytewise.Status != whole.Status || r1 == More && bytewise != whole {
			t.Fatalf("whole: %v status %d %+v; a byte at a time: %v status %d %+v", r1, whole.Status, whole, r3, bytewise.Status, bytewise)
		}
		if r1 == More {
			if c := whole.Close(s); c != Done && c != ErrTruncated {
				t.Fatalf("close: %v", c)
			}
		}
	})
}
