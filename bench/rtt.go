package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/report"
	"golang.org/x/sys/unix"
)

// The rtt scenario: how close xdpconnect's handshake RTT is to the wire's.
// A capture on the server's veth (dumpcap, kernel timestamps) sees each
// SYN arrive and its SYN-ACK leave; the run's own quantiles are compared
// with the capture's, at a low and a high rate, and the kernel's tcpi_rtt
// for connect() in the same lab is shown beside them.

// rttRates are the rates compared: a light load and about half of what
// one worker completes against the Linux listener on hosts of this kind.
var rttRates = []float64{2000, 20000}

func (o *Options) rttScenario() ([]Row, error) {
	b, err := newBed(false, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	var rows []Row
	for _, rate := range rttRates {
		target := fmt.Sprintf("linux-listener at %s", kps(rate))
		x := Row{Scenario: "rtt", Tool: "xdpconnect (gap to capture)", Target: target, Workers: 1, Unit: "µs p50 gap"}
		c := Row{Scenario: "rtt", Tool: "capture on the server's veth", Target: target, Workers: 1, Unit: "µs p50"}
		var gap99, rep50, rep99, cap50, cap99 []float64
		for i := 0; i < o.Runs; i++ {
			rep, capture, err := o.rttRun(b, rate)
			if err != nil {
				return nil, err
			}
			c50, c99 := quantile(capture, 0.5), quantile(capture, 0.99)
			r50, r99 := rep.RTT.P50*1e6, rep.RTT.P99*1e6
			x.Runs = append(x.Runs, r50-c50)
			c.Runs = append(c.Runs, c50)
			gap99, rep50, rep99 = append(gap99, r99-c99), append(rep50, r50), append(rep99, r99)
			cap50, cap99 = append(cap50, c50), append(cap99, c99)
			o.logf("  %s run %d: xdpconnect p50 %.1fµs p99 %.1fµs (%d of %d replies stamped), capture p50 %.1fµs p99 %.1fµs over %d handshakes",
				target, i+1, r50, r99, rep.RxStamped, rep.Established, c50, c99, len(capture))
		}
		x.RTTp50, x.RTTp99 = median(rep50)/1e6, median(rep99)/1e6
		c.RTTp50, c.RTTp99 = median(cap50)/1e6, median(cap99)/1e6
		x.Note = fmt.Sprintf("p99 gap %.1f µs (median of runs)", median(gap99))
		summarize(&x)
		summarize(&c)
		rows = append(rows, x, c)
	}
	k := Row{Scenario: "rtt", Tool: "kernel connect(), tcpi_rtt", Target: "linux-listener, one at a time", Workers: 1, Unit: "µs p50"}
	var k50, k99 []float64
	for i := 0; i < o.Runs; i++ {
		us, err := o.tcpInfoRTT(b, 2000)
		if err != nil {
			return nil, err
		}
		k.Runs, k50, k99 = append(k.Runs, quantile(us, 0.5)), append(k50, quantile(us, 0.5)), append(k99, quantile(us, 0.99))
	}
	k.RTTp50, k.RTTp99 = median(k50)/1e6, median(k99)/1e6
	k.Note = "the kernel's own sample of the handshake (µs granularity)"
	summarize(&k)
	return append(rows, k), nil
}

// rttRun runs xdpconnect at rate for the run's duration with a capture on
// the server's veth, and returns its report and the captured SYN to
// SYN-ACK times in µs.
func (o *Options) rttRun(b *bed, rate float64) (*report.Report, []float64, error) {
	dir, err := os.MkdirTemp("", "xdpc-rtt")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	pcap := filepath.Join(dir, "rtt.pcap")
	dc := exec.Command("ip", "netns", "exec", b.l.ServerNS, "dumpcap", "-q", "-i", lab.ServerIf, "-s", "96", "-B", "64",
		"-f", "tcp port 8080 and tcp[tcpflags] & tcp-syn != 0", "-w", pcap)
	if err := dc.Start(); err != nil {
		return nil, nil, fmt.Errorf("dumpcap: %w", err)
	}
	defer func() { _ = dc.Process.Kill(); _ = dc.Wait() }()
	// dumpcap says nothing when it is ready: wait for its file.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, err := os.Stat(pcap); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, errors.New("dumpcap did not start")
		}
	}
	r, err := o.runXDPConnect(b, 1, "--rate", strconv.FormatFloat(rate, 'f', 0, 64), "--duration", o.Duration.String())
	if err != nil {
		return nil, nil, err
	}
	time.Sleep(200 * time.Millisecond)
	_ = dc.Process.Signal(syscall.SIGTERM)
	_ = dc.Wait()
	out, err := exec.Command("tshark", "-r", pcap, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.srcport",
		"-e", "tcp.dstport", "-e", "tcp.flags").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("tshark: %w", err)
	}
	return r, synAckTimes(string(out)), nil
}

// synAckTimes pairs each SYN (flags 0x002) with the SYN-ACK (0x012) that
// answers it, from tshark's "time sport dport flags" lines, in µs.
func synAckTimes(lines string) []float64 {
	syn := map[string]float64{}
	var out []float64
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			continue
		}
		t, err1 := strconv.ParseFloat(f[0], 64)
		flags, err2 := strconv.ParseUint(strings.TrimPrefix(f[3], "0x"), 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		switch flags & 0x12 {
		case 0x02:
			syn[f[1]] = t
		case 0x12:
			if t0, ok := syn[f[2]]; ok {
				out = append(out, (t-t0)*1e6)
				delete(syn, f[2])
			}
		}
	}
	slices.Sort(out)
	return out
}

// quantile of sorted values, 0 when there are none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// kps formats a rate as k/s.
func kps(r float64) string {
	if r >= 1000 {
		return strconv.FormatFloat(r/1000, 'f', -1, 64) + "k/s"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

// tcpInfoRTT runs n kernel connect()s one after the other in the client
// namespace (this harness binary's tcpinfo-rtt) and returns each one's
// tcpi_rtt in µs, sorted.
func (o *Options) tcpInfoRTT(b *bed, n int) ([]float64, error) {
	out, err := exec.Command("ip", "netns", "exec", b.l.ClientNS, o.Self, "tcpinfo-rtt", "--dst", b.dst.String(),
		"--count", strconv.Itoa(n)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("tcpinfo-rtt: %v: %s", err, ee.Stderr)
		}
		return nil, err
	}
	var us []float64
	if err := json.Unmarshal(out, &us); err != nil {
		return nil, err
	}
	slices.Sort(us)
	return us, nil
}

// TCPInfoRTT connects to dst n times, one after the other, and writes the
// kernel's tcpi_rtt of each connection (µs, the handshake's sample) as a
// JSON array. It must run in the client's namespace.
func TCPInfoRTT(dst string, n int, out io.Writer) error {
	d := &net.Dialer{Timeout: 3 * time.Second}
	us := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		c, err := d.DialContext(context.Background(), "tcp", dst)
		if err != nil {
			return err
		}
		tc := c.(*net.TCPConn)
		raw, err := tc.SyscallConn()
		if err != nil {
			return err
		}
		var info *unix.TCPInfo
		var ierr error
		if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			return err
		}
		if ierr != nil {
			return ierr
		}
		us = append(us, float64(info.Rtt))
		_ = tc.SetLinger(0)
		_ = c.Close()
	}
	return json.NewEncoder(out).Encode(us)
}
