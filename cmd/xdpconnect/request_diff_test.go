package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The differential test of request mode: the scripted peer plays the same
// server to the kernel's client (connect(), one write of the request, a
// read of the response, close with SO_LINGER 0) and to xdpconnect --http
// with --close rst, and every segment the two send must match: the
// request (flags, numbers, window, echo, length), the ACKs of the
// response, the retransmission after an RTO, the reset at the end.
func TestDifferentialRequest(t *testing.T) {
	testutil.RequirePrivileges(t)
	req, err := l7.HTTPRequest("GET", "/", "lab", false)
	if err != nil {
		t.Fatal(err)
	}
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	// respond sends resp from the peer in segments of at most size bytes,
	// the last with FIN when fin is set, and collects the answers to each.
	respond := func(p *peer, size int, fin bool, tsval uint32) [][]answer {
		var out [][]answer
		for off := 0; off < len(resp); off += size {
			end := min(off+size, len(resp))
			r := p.seg(tcp.FlagACK|tcp.FlagPSH, 5001+tcp.Seq(off), tsval)
			r.Ack += tcp.Seq(len(req))
			r.Payload = []byte(resp[off:end])
			if end == len(resp) && fin {
				r.Flags |= tcp.FlagFIN
			}
			p.send(r, 0)
			out = append(out, p.answers(300*time.Millisecond))
		}
		return out
	}
	cases := []struct {
		name   string
		script func(p *peer) [][]answer
	}{
		{"request, response and FIN in one segment", func(p *peer) [][]answer {
			first := p.answers(300 * time.Millisecond)
			return append([][]answer{first}, respond(p, len(resp), true, 800)...)
		}},
		{"response in three segments, no FIN", func(p *peer) [][]answer {
			first := p.answers(300 * time.Millisecond)
			return append([][]answer{first}, respond(p, 16, false, 800)...)
		}},
		{"request lost: TLP, RTO, then the response", func(p *peer) [][]answer {
			// Not acknowledged: the request goes again as a tail loss
			// probe after the RTO (at least TCP_RTO_MIN, 200 ms), then on
			// the RTO itself 200 ms later, next after 400 ms more: three
			// copies in 500 ms (RTOs alone would make two).
			first := p.answers(500 * time.Millisecond)
			return append([][]answer{first}, respond(p, len(resp), true, 900)...)
		}},
	}
	var rows []string
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		for _, tc := range cases {
			t.Run(fam+"/"+strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				var linux, ours [][]answer
				play := func(out *[][]answer) func(p *peer) {
					return func(p *peer) {
						p.established()
						*out = tc.script(p)
					}
				}
				kernelClient(newPeerOf(t, v6), func(c net.Conn) error {
					if _, err := c.Write(req); err != nil {
						return err
					}
					_ = c.SetDeadline(time.Now().Add(3 * time.Second))
					r, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						return err
					}
					_, err = io.ReadAll(r.Body)
					return err
				}, play(&linux))
				r := newPeerOf(t, v6).run(play(&ours), func(o *runOpts) {
					o.plan.Request = &l7.Spec{Request: req}
					o.plan.Close = fastpath.CloseRST
				})
				if r.Requests == nil || r.Requests.Completed != 1 {
					t.Fatalf("xdpconnect: %+v", r.Requests)
				}
				l, x := fmt.Sprint(linux), fmt.Sprint(ours)
				if l != x {
					t.Errorf("Linux answered %s, xdpconnect %s", l, x)
				}
				rows = append(rows, fmt.Sprintf("| %s (%s) | %s | %s | %v |", tc.name, fam, l, x, l == x))
			})
		}
	}
	t.Logf("\n| case | Linux | xdpconnect | match |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
