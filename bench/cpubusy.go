package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Which side of a run was the limit is a matter of evidence: the busy share
// of each CPU while it ran. With the client pinned to CPU 0 and the server
// to CPU 1, a CPU 1 busy all the time says the server set the rate.

// cpuTimes is each CPU's busy and total time in clock ticks, indexed by
// CPU number.
type cpuTimes [][2]uint64

// parseCPUTimes reads the per-CPU lines of /proc/stat (user nice system
// idle iowait irq softirq steal ...; guest time is inside user's): busy is
// all but idle and iowait.
func parseCPUTimes(stat []byte) (cpuTimes, error) {
	var out cpuTimes
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("/proc/stat: %q", f[0])
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[1+i], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/stat: %s: %w", f[0], err)
			}
		}
		var total uint64
		for _, x := range v {
			total += x
		}
		for len(out) <= n {
			out = append(out, [2]uint64{})
		}
		out[n] = [2]uint64{total - v[3] - v[4], total}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-CPU line")
	}
	return out, nil
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(b)
}

// busySince is each CPU's busy share from before to t.
func (t cpuTimes) busySince(before cpuTimes) []float64 {
	out := make([]float64, min(len(t), len(before)))
	for i := range out {
		if d := t[i][1] - before[i][1]; d > 0 {
			out[i] = float64(t[i][0]-before[i][0]) / float64(d)
		}
	}
	return out
}

// busyRuns gathers the CPUs' busy shares of a row's runs.
type busyRuns [][]float64

// measure runs fn and keeps each CPU's busy share while it ran.
func (b *busyRuns) measure(fn func() error) error {
	before, err := readCPUTimes()
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	after, err := readCPUTimes()
	if err != nil {
		return err
	}
	*b = append(*b, after.busySince(before))
	return nil
}

// medians is each CPU's median busy share over the runs.
func (b busyRuns) medians() []float64 {
	if len(b) == 0 {
		return nil
	}
	out := make([]float64, len(b[0]))
	for i := range out {
		var s []float64
		for _, r := range b {
			if i < len(r) {
				s = append(s, r[i])
			}
		}
		out[i] = median(s)
	}
	return out
}

// busyNote says the medians for a row with the client on CPU 0 and the
// server on CPU 1.
func busyNote(m []float64) string {
	if len(m) < 2 {
		return ""
	}
	return fmt.Sprintf("CPU busy: client (0) %.0f %%, server (1) %.0f %%", m[0]*100, m[1]*100)
}
