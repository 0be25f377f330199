package main

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// I1, I3 across runs: nginx closes a connection after its one request
// (Connection: close), often before our FIN reaches it, so the server
// holds many of a run's 4-tuples in TIME-WAIT; the next run on the same ports must get later ISNs and
// TSvals, as a kernel client's would (per-boot key, host clocks), so the
// server takes each SYN as a new connection. With a key and clocks of the
// run's own, about half the SYNs met an ACK from the TIME-WAIT and waited a
// second for their retransmission.
func TestNextRunThroughServerTimeWait(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	dst := netip.AddrPortFrom(l.ServerAddr, 80)
	startNginx(t, l.ServerNS, dst)
	args := []string{"--dst", dst.String(), "--http", "GET /", "--close", "fin", "--count", "400", "--rate", "2000", "--src-ports", "30000-30399"}
	first, stderr, code := runBinary(t, l.ClientNS, args...)
	if code != 0 || first.Established != 400 {
		t.Fatalf("first run: exit %d, %+v\n%s", code, first, stderr)
	}
	out, err := exec.Command("ip", "netns", "exec", l.ServerNS, "ss", "-Htan", "state", "time-wait").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n"); n < 100 {
		t.Fatalf("the server holds %d of 400 connections in TIME-WAIT: the test's premise fails", n)
	}
	second, stderr, code := runBinary(t, l.ClientNS, args...)
	if code != 0 || second.Established != 400 || second.Retransmits != 0 {
		t.Fatalf("second run through the server's TIME-WAIT: exit %d, established %d, SYN retransmits %d (a SYN the TIME-WAIT did not take)\n%s",
			code, second.Established, second.Retransmits, stderr)
	}
}
