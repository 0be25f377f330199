package bench

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The peers' reports as their Debian builds print them (captured from
// this lab): the figures a row takes, in seconds whatever unit the tool
// used.
func TestParsePeers(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	ab := `Complete requests:      52230
Failed requests:        30
Non-2xx responses:      20
Time taken for tests:   3.000 seconds
Connection Times (ms)
              min  mean[+/-sd] median   max
Connect:        0    0   0.4      0       8
Processing:     2   15   1.0     15      20
Waiting:        0   15   1.0     14      20
Total:          9   15   0.7     15      20

Percentage of the requests served within a certain time (ms)
  50%     15
  66%     15
  99%     16
 100%     20 (longest request)
`
	r, err := parseAB([]byte(ab))
	if err != nil || r.fig.Complete != 52180 || r.fig.Failed != 50 || !near(r.rate, 52180.0/3) ||
		!near(r.fig.TTLBp50, 0.015) || !near(r.fig.TTLBp99, 0.016) || !near(r.fig.TTFBp50, 0.014) {
		t.Fatalf("ab: %+v %v", r, err)
	}
	wrk := `Running 3s test @ http://198.18.0.2/64k
  Latency Distribution
     50%  800.00us
     75%  130.30ms
     99%    1.25s
  13737 requests in 3.05s, 863.67MB read
  Non-2xx or 3xx responses: 7
  Socket errors: connect 1, read 2, write 0, timeout 3
Requests/sec:   4496.88
`
	r, err = parseWrk([]byte(wrk))
	if err != nil || r.fig.Complete != 13737-13 || r.fig.Failed != 13 || !near(r.rate, float64(13737-13)/3.05) ||
		!near(r.fig.TTLBp50, 0.0008) || !near(r.fig.TTLBp99, 1.25) {
		t.Fatalf("wrk: %+v %v", r, err)
	}
	h2 := `finished in 5.00s, 12997.28 req/s, 182.96MB/s
requests: 65000 total, 65000 started, 64990 done, 64980 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 64970 2xx, 0 3xx, 10 4xx, 0 5xx
`
	r, err = parseH2load([]byte(h2))
	if err != nil || r.fig.Complete != 64970 || r.fig.Failed != 30 || !near(r.rate, 64970.0/5) {
		t.Fatalf("h2load: %+v %v", r, err)
	}
	if _, err := parseWrk([]byte("unable to connect to 198.18.0.2:80 Connection refused\n")); err == nil {
		t.Fatal("wrk: a report without a count parsed")
	}
	// The per-request log: µs to the response's end; failed streams (-1)
	// are left out.
	log := filepath.Join(t.TempDir(), "h2.log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		b.WriteString("1796612859320807\t200\t" + strconv.Itoa(i*100) + "\n")
	}
	b.WriteString("1796612859320807\t-1\t99999999\n")
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p50, p99, err := h2loadQuantiles(log)
	if err != nil || p50 < 0.0047 || p50 > 0.0054 || p99 < 0.0093 || p99 > 0.0106 {
		t.Fatalf("h2load log: p50 %v p99 %v %v", p50, p99, err)
	}
}
