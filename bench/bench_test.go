package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
	"gonum.org/v1/plot/plotter"
)

// The reflector answers a kernel connect() (with the pass program on the
// client veth), so kernel baselines can be measured against it.
func TestReflectorAnswersKernelConnect(t *testing.T) {
	testutil.RequirePrivileges(t)
	b, err := newBed(true, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	err = b.withPass(func() error {
		return lab.Do(b.l.ClientNS, func() error {
			for i := 0; i < 10; i++ {
				c, err := net.DialTimeout("tcp", b.dst.String(), 2*time.Second)
				if err != nil {
					return err
				}
				c.Close()
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sent, _, _, err := b.refl.Counters()
	if err != nil || sent < 10 {
		t.Fatalf("reflector sent %d SYN-ACKs (%v)", sent, err)
	}
	if b.l.Listener.Accepted() != 0 {
		t.Fatal("the Linux listener answered instead of the reflector")
	}
}

// In HTTP mode the reflector answers a kernel HTTP client's requests, over
// both families, with its canned response; the client's FIN is
// acknowledged (its socket does not linger in LAST-ACK).
func TestReflectorAnswersHTTP(t *testing.T) {
	testutil.RequirePrivileges(t)
	b, err := newBed(true, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := b.refl.SetMode(reflector.HTTP, 8080); err != nil {
		t.Fatal(err)
	}
	// The transport dials on goroutines of its own: each socket is made
	// inside the client's namespace, never in the root one.
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = lab.Do(b.l.ClientNS, func() error {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: dial, Proxy: nil}, Timeout: 2 * time.Second}
	err = b.withPass(func() error {
		{
			for _, a := range []netip.Addr{b.l.ServerAddr, b.l.ServerAddr6} {
				for i := 0; i < 5; i++ {
					resp, err := c.Get("http://" + netip.AddrPortFrom(a, 8080).String() + "/")
					if err != nil {
						return err
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
						t.Errorf("%s: status %d body %q (%v)", a, resp.StatusCode, body, err)
					}
				}
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.refl.Responses(); err != nil || n != 10 {
		t.Fatalf("reflector sent %d responses (%v)", n, err)
	}
}

// The capture's SYN to SYN-ACK pairing: by port, each SYN with the
// SYN-ACK that answers it, in µs; other segments and lines ignored.
func TestSynAckTimes(t *testing.T) {
	lines := "1.000000\t40000\t8080\t0x0002\n" +
		"1.000010\t8080\t40000\t0x0012\n" +
		"1.000020\t40002\t8080\t0x0002\n" +
		"1.000021\t40000\t8080\t0x0010\n" +
		"garbage\n" +
		"1.000050\t8080\t40002\t0x0012\n" +
		"1.000060\t8080\t40004\t0x0012\n"
	got := synAckTimes(lines)
	if len(got) != 2 || got[0] < 9.9 || got[0] > 10.1 || got[1] < 29.9 || got[1] > 30.1 {
		t.Fatalf("got %v, want [10 30] µs", got)
	}
	if quantile(got, 0.5) != got[1] || quantile(nil, 0.5) != 0 || median([]float64{3, 1, 2}) != 2 || kps(2000) != "2k/s" || kps(500) != "500/s" {
		t.Fatal("quantile, median or kps")
	}
}

// The summary pairs each peer with xdpconnect's row of the same scenario
// and unit (by the tool name's last word when there are several, else the
// best), and the axes say k/s and µs.
func TestRatiosAndLabels(t *testing.T) {
	rows := []Row{
		{Scenario: "listener", Tool: "xdpconnect", Unit: "handshakes/s", Median: 130000},
		{Scenario: "listener", Tool: "go-dialer", Unit: "handshakes/s", Median: 40000},
		{Scenario: "xsk", Tool: "xdpconnect xsk/ TX", Unit: "frames/s", Median: 2000},
		{Scenario: "xsk", Tool: "xdpconnect xsk/ RX", Unit: "frames/s", Median: 1500},
		{Scenario: "xsk", Tool: "asavie/xdp TX", Unit: "frames/s", Median: 1000},
		{Scenario: "xsk", Tool: "asavie/xdp RX", Unit: "frames/s", Median: 1500},
		{Scenario: "metrics", Tool: "other", Unit: "handshakes/s", Median: 1},
		{Scenario: "synonly", Tool: "xdpconnect --close synonly", Unit: "SYN/s", Median: 300},
		{Scenario: "synonly", Tool: "xdpconnect --close synonly --xdp-syn", Unit: "SYN/s", Median: 2000},
		{Scenario: "synonly", Tool: "masscan 1.3", Unit: "SYN/s", Median: 400},
	}
	labels, values := ratios(rows)
	want := map[string]float64{"listener: vs go-dialer": 3.25, "xsk: vs asavie/xdp TX": 2, "xsk: vs asavie/xdp RX": 1, "synonly: vs masscan 1.3": 5}
	if len(labels) != len(want) {
		t.Fatalf("ratios %v %v", labels, values)
	}
	for i, l := range labels {
		if want[l] != values[i] {
			t.Errorf("%s: %v, want %v", l, values[i], want[l])
		}
	}
	for v, s := range map[float64]string{500: "500/s", 150000: "150k/s", 1.5e6: "1.5M/s"} {
		if rateLabel(v) != s {
			t.Errorf("rate %v labelled %q, want %q", v, rateLabel(v), s)
		}
	}
	for v, s := range map[float64]string{1e-5: "10µs", 2.5e-4: "250µs", 1e-3: "1ms", 2: "2s", 5e-8: "50ns"} {
		if latencyLabel(v) != s {
			t.Errorf("latency %v labelled %q, want %q", v, latencyLabel(v), s)
		}
	}
	if bucketIndex(float64(report.BucketHigh(100))/1e9) != 100 {
		t.Error("bucketIndex")
	}
}

// RTT samples of 0 ns still plot on the log axis (at 1 ns), and the
// plots are written.
func TestPlotZeroRTT(t *testing.T) {
	var h report.Histogram
	h.Record(0)
	h.Record(5000)
	c := cdf(&h)
	if len(c) != 2 || c[0].X <= 0 || c[1].Y != 1 {
		t.Fatalf("cdf %v", c)
	}
	var tr traces
	tr.add("x", plotter.XYs{{X: 0.1, Y: 1000}, {X: 0.2, Y: 2000}}, c)
	if err := tr.write(t.TempDir(), "test", "nowhere"); err != nil {
		t.Fatal(err)
	}
}
