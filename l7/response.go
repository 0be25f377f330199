package l7

import "bytes"

// Result is what a response reader says after some bytes or the close.
type Result uint8

// Results. Everything past More is final.
const (
	More         Result = iota // the response is not complete yet
	Done                       // the response is complete
	ErrMalformed               // not a response the framing can read (EBADMSG)
	ErrTooLarge                // past Spec.MaxResponse or Spec.MaxHeader (EMSGSIZE)
	ErrTruncated               // the server closed before the end (EOF)
)

var resultNames = [...]string{"more", "done", "malformed", "too large", "truncated"}

// String names the result.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "?"
}

// Response is one connection's reading of its response: 16 bytes, kept
// by the caller beside the connection and zeroed for each response.
type Response struct {
	// Got counts the response's bytes so far (at most MaxResponse).
	Got uint32
	// rem is the body or chunk bytes left, or the Content-Length being
	// read.
	rem uint32
	hdr uint16 // header (and trailer) bytes so far
	// Status is the HTTP status code once the status line was read.
	Status uint16
	phase  uint8
	pos    uint8 // place in the token being read (or the substring's match)
	cand   uint8 // header names still matching
	flags  uint8
}

const (
	phStatus       = iota // "HTTP/1.x SSS"
	phStatusRest          // the reason phrase, to LF
	phLineStart           // a header line or the empty line
	phName                // a header name
	phCL                  // Content-Length's value
	phTE                  // Transfer-Encoding's value
	phSkipLine            // the rest of a line nobody reads
	phHeadersLF           // the LF of the empty line
	phBody                // rem body bytes
	phChunkSize           // a chunk's size in hex
	phChunkExt            // chunk extensions, to LF
	phChunkData           // rem chunk bytes
	phChunkCR             // the CRLF after a chunk
	phChunkLF             //
	phTrailerStart        // a trailer line or the empty line
	phTrailerLine         //
	phTrailerLF           //
	phUntilClose          // a body the server's close ends
	phDone
)

const (
	flCL      = 1 << iota // a Content-Length was read
	flChunked             // Transfer-Encoding ends in chunked
	flDigits              // digits of the value being read seen
)

// Header names the reader looks at (lower case), by candidate bit.
var names = [2]string{"content-length", "transfer-encoding"}

const chunked = "chunked"

// nameBytes[i][c] are the candidate bits of the names whose i-th byte is
// c, in either case; nameEnd marks the bytes that end a name (':') or make
// it malformed.
var nameBytes [len("transfer-encoding")][256]uint8
var nameEnd [256]uint8

func init() {
	for k, n := range names {
		for i := range len(n) {
			for c := range 256 {
				if lower(byte(c)) == n[i] {
					nameBytes[i][c] |= 1 << k
				}
			}
		}
	}
	for _, c := range ":\r\n \t" {
		nameEnd[c] = 1
	}
}

// Feed reads the next in-order bytes of the response. Once it returns
// anything but More, the response is over; later calls return the same.
// Bytes past MaxResponse make it ErrTooLarge unless the response ended
// before them: the bytes up to the limit are read first, so where a
// response is cut into segments never changes its outcome or status.
func (r *Response) Feed(s *Spec, b []byte) Result {
	if r.phase == phDone {
		return r.final()
	}
	over := uint64(len(b)) > uint64(s.MaxResponse-r.Got)
	if over {
		b = b[:s.MaxResponse-r.Got]
	}
	r.Got += uint32(len(b))
	if res := r.feed(s, b); res != More || !over {
		return res
	}
	return r.end(ErrTooLarge)
}

// feed reads b, which keeps the response within MaxResponse.
func (r *Response) feed(s *Spec, b []byte) Result {
	switch s.Framing {
	case Bytes:
		if r.Got >= s.ExpectBytes {
			return r.end(Done)
		}
		return More
	case Substring:
		return r.substring(s, b)
	case Close:
		return More
	}
	return r.http(s, b)
}

// Close is the server's FIN after the bytes fed so far: it completes a
// response that runs to the close, and truncates any other.
func (r *Response) Close(s *Spec) Result {
	if r.phase == phDone {
		return r.final()
	}
	if s.Framing == Close || s.Framing == HTTP && r.phase == phUntilClose {
		return r.end(Done)
	}
	return r.end(ErrTruncated)
}

// end makes res final. The result is kept in rem, which a finished
// response does not need.
func (r *Response) end(res Result) Result {
	r.phase, r.rem = phDone, uint32(res)
	return res
}

// badStatus ends a response whose status line is not HTTP/1.x's: no
// status is reported for it.
func (r *Response) badStatus() Result {
	r.Status = 0
	return r.end(ErrMalformed)
}

func (r *Response) final() Result { return Result(r.rem) }

func (r *Response) substring(s *Spec, b []byte) Result {
	k := int(r.pos)
	for _, c := range b {
		for k > 0 && c != s.Expect[k] {
			k = int(s.fail[k-1])
		}
		if c == s.Expect[k] {
			k++
		}
		if k == len(s.Expect) {
			return r.end(Done)
		}
	}
	r.pos = uint8(k)
	return More
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// header says whether phase reads the header section (or trailers),
// whose size MaxHeader bounds.
func header(phase uint8) bool {
	return phase <= phHeadersLF || phase >= phTrailerStart && phase <= phTrailerLF
}

func (r *Response) http(s *Spec, b []byte) Result {
	for i := 0; i < len(b); i++ {
		// Bodies are counted in bulk, not read byte by byte.
		switch r.phase {
		case phBody, phChunkData:
			n := uint32(min(uint64(len(b)-i), uint64(r.rem)))
			r.rem -= n
			i += int(n) - 1
			if r.rem == 0 {
				if r.phase == phBody {
					return r.end(Done)
				}
				r.phase = phChunkCR
			}
			continue
		case phUntilClose:
			return More
		case phStatusRest, phSkipLine:
			// A line nobody reads: to its LF at once.
			k := bytes.IndexByte(b[i:], '\n')
			n := k + 1
			if k < 0 {
				n = len(b) - i
			}
			if uint32(r.hdr)+uint32(n) > s.MaxHeader {
				return r.end(ErrTooLarge)
			}
			r.hdr += uint16(n)
			if k < 0 {
				return More
			}
			i += k
			r.phase = phLineStart
			continue
		case phStatus:
			if r.pos == 0 && len(b)-i >= len(statusPrefix) && uint32(r.hdr)+uint32(len(statusPrefix)) <= s.MaxHeader {
				if st, ok := status(b[i : i+len(statusPrefix)]); ok {
					// The status line's fixed part at once.
					r.Status, r.pos = st, uint8(len(statusPrefix))
					r.hdr += uint16(len(statusPrefix))
					i += len(statusPrefix) - 1
					continue
				}
			}
		case phName:
			// The rest of the name at once, when its end is in b.
			j := i
			for j < len(b) && nameEnd[b[j]] == 0 {
				j++
			}
			if j == len(b) && r.cand != 0 {
				break // a byte at a time: the name goes on in the next segment
			}
			if uint32(r.hdr)+uint32(j-i) > s.MaxHeader {
				return r.end(ErrTooLarge)
			}
			r.hdr += uint16(j - i)
			r.cand &= nameRest(b[i:j], int(r.pos))
			r.pos = uint8(min(int(r.pos)+j-i, 255))
			if i = j; i == len(b) {
				return More
			}
		}
		if header(r.phase) {
			if r.hdr++; uint32(r.hdr) > s.MaxHeader || r.hdr == 0 {
				return r.end(ErrTooLarge)
			}
		}
		if res := r.step(s, b[i]); res != More {
			return res
		}
	}
	return More
}

// step reads one byte outside a body. Lines nobody reads (phStatusRest,
// phSkipLine) never come here: Feed takes them to their LF at once.
func (r *Response) step(s *Spec, c byte) Result {
	switch r.phase {
	case phStatus:
		if !r.statusByte(c) {
			return r.badStatus()
		}
	case phLineStart:
		switch c {
		case '\r':
			r.phase = phHeadersLF
		case '\n':
			return r.headersEnd(s)
		case ' ', '\t', ':':
			// Obsolete line folding, or a line without a name.
			return r.end(ErrMalformed)
		default:
			r.phase, r.pos, r.cand = phName, 0, 1<<len(names)-1
			return r.step(s, c)
		}
	case phName:
		switch c {
		case ':':
			r.phase = phSkipLine
			for k, n := range names {
				if r.cand&(1<<k) != 0 && int(r.pos) == len(n) {
					r.phase, r.pos = phCL+uint8(k), 0
					r.flags &^= flDigits
					if k == 0 {
						if r.flags&flCL != 0 {
							return r.end(ErrMalformed) // two lengths: RFC 9112 §6.3 rule 5
						}
						r.flags |= flCL
						r.rem = 0
					}
				}
			}
		case '\r', '\n', ' ', '\t':
			return r.end(ErrMalformed)
		default:
			if int(r.pos) < len(nameBytes) {
				r.cand &= nameBytes[r.pos][c]
			} else {
				r.cand = 0
			}
			if r.pos < 255 {
				r.pos++
			}
		}
	case phCL:
		return r.lengthByte(s, c)
	case phTE:
		r.codingByte(c)
	case phHeadersLF:
		if c != '\n' {
			return r.end(ErrMalformed)
		}
		return r.headersEnd(s)
	case phChunkSize:
		return r.sizeByte(s, c)
	case phChunkExt:
		if c != '\n' {
			return More
		}
		if r.flags&flDigits == 0 {
			return r.end(ErrMalformed)
		}
		r.flags &^= flDigits
		if r.rem == 0 {
			r.phase = phTrailerStart
		} else {
			r.phase = phChunkData
		}
	case phChunkCR:
		switch c {
		case '\r':
			r.phase = phChunkLF
		case '\n':
			r.phase, r.rem = phChunkSize, 0
		default:
			return r.end(ErrMalformed)
		}
	case phChunkLF:
		if c != '\n' {
			return r.end(ErrMalformed)
		}
		r.phase, r.rem = phChunkSize, 0
	case phTrailerStart:
		switch c {
		case '\r':
			r.phase = phTrailerLF
		case '\n':
			return r.end(Done)
		default:
			r.phase = phTrailerLine
		}
	case phTrailerLine:
		if c == '\n' {
			r.phase = phTrailerStart
		}
	case phTrailerLF:
		if c != '\n' {
			return r.end(ErrMalformed)
		}
		return r.end(Done)
	}
	return More
}

// statusPrefix is the fixed part of a status line: "HTTP/1.x SSS".
const statusPrefix = "HTTP/1.x SSS"

// status reads a status line's fixed part (len(statusPrefix) bytes) as
// statusByte does; ok is false where statusByte would fail.
func status(b []byte) (uint16, bool) {
	if string(b[:7]) != "HTTP/1." || b[7] != '0' && b[7] != '1' || b[8] != ' ' || b[9] < '1' || b[9] > '9' {
		return 0, false
	}
	var st uint16
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		st = st*10 + uint16(c-'0')
	}
	return st, true
}

// nameRest is the candidate bits of the names whose bytes from pos on are
// b, in either case, to their end.
func nameRest(b []byte, pos int) uint8 {
	var cand uint8
	for k, n := range names {
		if pos+len(b) != len(n) {
			continue
		}
		ok := true
		for i, c := range b {
			ok = ok && lower(c) == n[pos+i]
		}
		if ok {
			cand |= 1 << k
		}
	}
	return cand
}

// statusByte takes byte c at place r.pos of "HTTP/1.x SSS" and what
// follows it, and says whether it fits.
func (r *Response) statusByte(c byte) bool {
	const proto = "HTTP/1."
	p := int(r.pos)
	r.pos++
	if p < len(proto) {
		return c == proto[p]
	}
	if p == len(proto) {
		return c == '0' || c == '1'
	}
	if p == len(proto)+1 {
		return c == ' '
	}
	if p <= len(proto)+4 {
		d, ok := digit(c, 10)
		if !ok || p == len(proto)+2 && d == 0 {
			return false
		}
		r.Status = r.Status*10 + uint16(d)
		return true
	}
	switch c {
	case ' ', '\r':
		r.phase = phStatusRest
	case '\n':
		r.phase = phLineStart
	default:
		return false
	}
	return true
}

// digit is c's value as a digit of base 10 or 16.
func digit(c byte, base byte) (byte, bool) {
	if '0' <= c && c <= '9' {
		return c - '0', true
	}
	if l := lower(c); base == 16 && 'a' <= l && l <= 'f' {
		return l - 'a' + 10, true
	}
	return 0, false
}

// lengthByte reads Content-Length's value: digits between optional
// whitespace, to the end of the line.
func (r *Response) lengthByte(s *Spec, c byte) Result {
	if d, ok := digit(c, 10); ok {
		if r.pos != 0 { // digits after whitespace that followed digits
			return r.end(ErrMalformed)
		}
		r.flags |= flDigits
		v := uint64(r.rem)*10 + uint64(d)
		if v > uint64(s.MaxResponse) {
			return r.end(ErrTooLarge)
		}
		r.rem = uint32(v)
		return More
	}
	switch c {
	case ' ', '\t':
		if r.flags&flDigits != 0 {
			r.pos = 1
		}
	case '\r':
	case '\n':
		if r.flags&flDigits == 0 {
			return r.end(ErrMalformed)
		}
		r.phase = phLineStart
	default:
		return r.end(ErrMalformed)
	}
	return More
}

// codingByte reads Transfer-Encoding's value: chunked must be the final
// coding, so the match restarts at each other letter, and only a match
// that ends the value counts.
func (r *Response) codingByte(c byte) {
	switch c {
	case '\n':
		if int(r.pos) == len(chunked) {
			r.flags |= flChunked
		} else {
			r.flags &^= flChunked
		}
		r.phase = phLineStart
		return
	case ' ', '\t', '\r':
		return
	}
	l := lower(c)
	if int(r.pos) < len(chunked) && l == chunked[r.pos] {
		r.pos++
	} else if l == chunked[0] {
		r.pos = 1
	} else {
		r.pos = 0
	}
}

// sizeByte reads a chunk's size line up to its extensions or end.
func (r *Response) sizeByte(s *Spec, c byte) Result {
	if d, ok := digit(c, 16); ok {
		r.flags |= flDigits
		v := uint64(r.rem)<<4 | uint64(d)
		if v > uint64(s.MaxResponse) {
			return r.end(ErrTooLarge)
		}
		r.rem = uint32(v)
		return More
	}
	switch c {
	case ';', ' ', '\t', '\r':
		if r.flags&flDigits == 0 {
			return r.end(ErrMalformed)
		}
		r.phase = phChunkExt
		return More
	case '\n':
		r.phase = phChunkExt
		return r.step(s, c)
	}
	return r.end(ErrMalformed)
}

// headersEnd picks the body's framing (RFC 9112 §6.3) once the header
// section is over.
func (r *Response) headersEnd(s *Spec) Result {
	st := r.Status
	if st >= 100 && st < 200 && st != 101 {
		// An interim response (100 Continue, 103 Early Hints): the final
		// one follows.
		*r = Response{Got: r.Got, hdr: r.hdr}
		return More
	}
	if s.HEAD || st < 200 || st == 204 || st == 304 {
		return r.end(Done)
	}
	if r.flags&flChunked != 0 {
		r.phase, r.rem = phChunkSize, 0
		r.flags &^= flDigits
		return More
	}
	if r.flags&flCL != 0 {
		if r.rem == 0 {
			return r.end(Done)
		}
		r.phase = phBody
		return More
	}
	r.phase = phUntilClose
	return More
}
