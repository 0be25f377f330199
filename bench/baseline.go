package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpconnect/xdpconnect/report"
)

// BaselineResult is what a kernel-connect baseline reports.
type BaselineResult struct {
	Handshakes uint64  `json:"handshakes"`
	Errors     uint64  `json:"errors"`
	Seconds    float64 `json:"seconds"`
	// Series are handshakes completed in each 100 ms of the run.
	Series []uint64 `json:"series"`
	// RTT counts connect() durations in report.Histogram's buckets (16
	// per power of two of nanoseconds), as [bucket, count] pairs of the
	// non-empty ones: the same resolution as xdpconnect's own.
	RTT [][2]uint64 `json:"rtt_buckets"`
}

// GoDial is the Go net.Dialer baseline: conns goroutines connect, close
// with RST (SO_LINGER 0, like xdpconnect's rst mode) and repeat for d.
// With path set each connection is an HTTP GET of path instead (net/http,
// keep-alive off: a new connection per request, as wrk users ask for), and
// RTT is the request's time. It must run in the client's network
// namespace (the harness execs it there).
func GoDial(dst string, conns int, d time.Duration, path string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	one := func() error {
		c, err := dialer.DialContext(ctx, "tcp", dst)
		if err != nil {
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c.Close()
	}
	if path != "" {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: dialer.DialContext,
			MaxIdleConnsPerHost: -1}, Timeout: 10 * time.Second}
		url := "http://" + dst + path
		one = func() error {
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return err
		}
	}
	return loop(ctx, conns, d, one, out)
}

// loop runs one in conns goroutines until ctx ends (d from now), and
// writes the BaselineResult: successes, errors, their times.
func loop(ctx context.Context, conns int, d time.Duration, one func() error, out io.Writer) error {
	var n, errs atomic.Uint64
	start := time.Now()
	slots := int(d/(100*time.Millisecond)) + 2
	series := make([]atomic.Uint64, slots)
	hists := make([]report.Histogram, conns)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := one(); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				n.Add(1)
				h.Record(int64(time.Since(t0)))
				series[min(int(time.Since(start)/(100*time.Millisecond)), slots-1)].Add(1)
			}
		}()
	}
	wg.Wait()
	res := BaselineResult{Handshakes: n.Load(), Errors: errs.Load(), Seconds: time.Since(start).Seconds()}
	for i := range series {
		res.Series = append(res.Series, series[i].Load())
	}
	var all report.Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	for i, n := range all.Counts {
		if n > 0 {
			res.RTT = append(res.RTT, [2]uint64{uint64(i), n})
		}
	}
	return json.NewEncoder(out).Encode(res)
}

// EpollC is the C epoll nonblocking-connect baseline: conns sockets in
// flight, each closed with RST once connected, for a duration. With a
// fifth argument, a request, each connection sends it once connected and
// reads until the server closes (an HTTP/1.1 request with Connection:
// close), then closes with RST: one request per connection, its time
// from connect() to the server's FIN.
const EpollC = `#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage dst;
static socklen_t dstlen;
static int ep;
static unsigned long long ok, errs;
static double t0, started[1 << 20];
static unsigned long long series[10000], rtt[61 * 16];
static const char *req;
static size_t reqlen;
static char sent[1 << 20], got[1 << 20];

/* report.Histogram's bucket of a duration in ns: 16 per power of two. */
static int bucket_of(long long v) {
	if (v < 16) return v < 0 ? 0 : (int)v;
	int e = 64 - __builtin_clzll((unsigned long long)v) - 4;
	return e * 16 + (int)((unsigned long long)v >> (e - 1)) - 16;
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void start(void) {
	int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) { errs++; return; }
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	if (connect(fd, (struct sockaddr *)&dst, dstlen) < 0 && errno != EINPROGRESS) { errs++; close(fd); return; }
	if (fd < (1 << 20)) started[fd] = now(), sent[fd] = 0, got[fd] = 0;
	struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv) {
	if (argc != 5 && argc != 6) { fprintf(stderr, "usage: epoll IP PORT SECONDS CONNS [REQUEST]\n"); return 2; }
	if (argc == 6) req = argv[5], reqlen = strlen(req);
	struct sockaddr_in *d4 = (struct sockaddr_in *)&dst;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&dst;
	if (inet_pton(AF_INET, argv[1], &d4->sin_addr) == 1) {
		d4->sin_family = AF_INET, d4->sin_port = htons(atoi(argv[2])), dstlen = sizeof *d4;
	} else if (inet_pton(AF_INET6, argv[1], &d6->sin6_addr) == 1) {
		d6->sin6_family = AF_INET6, d6->sin6_port = htons(atoi(argv[2])), dstlen = sizeof *d6;
	} else { fprintf(stderr, "epoll: bad address %s\n", argv[1]); return 2; }
	double dur = atof(argv[3]);
	int conns = atoi(argv[4]);
	ep = epoll_create1(0);
	t0 = now();
	for (int i = 0; i < conns; i++) start();
	struct epoll_event evs[256];
	double end = t0 + dur;
	while (now() < end) {
		int n = epoll_wait(ep, evs, 256, 10);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, err = 0;
			socklen_t len = sizeof err;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0 && req && fd < (1 << 20)) {
				if (!sent[fd]) {
					/* Connected: the request, then wait for the response. */
					if (write(fd, req, reqlen) != (ssize_t)reqlen) err = EIO;
					else {
						sent[fd] = 1;
						struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
						epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
						continue;
					}
				} else {
					char buf[65536];
					ssize_t r = read(fd, buf, sizeof buf);
					if (r > 0) {
						got[fd] = 1;
						continue;
					}
					if (r < 0 && errno == EAGAIN) continue;
					if (r < 0 || !got[fd]) err = EIO;
				}
			}
			if (err == 0) {
				double t = now();
				ok++;
				int slot = (int)((t - t0) * 10);
				if (slot >= 0 && slot < 10000) series[slot]++;
				rtt[bucket_of((long long)((t - started[fd]) * 1e9))]++;
			} else errs++;
			close(fd);
			start();
		}
	}
	int slots = (int)(dur * 10) + 1;
	printf("{\"handshakes\":%llu,\"errors\":%llu,\"seconds\":%f,\"series\":[", ok, errs, now() - t0);
	for (int i = 0; i < slots && i < 10000; i++) printf("%s%llu", i ? "," : "", series[i]);
	printf("],\"rtt_buckets\":[");
	for (int i = 0, first = 1; i < 61 * 16; i++)
		if (rtt[i]) { printf("%s[%d,%llu]", first ? "" : ",", i, rtt[i]); first = 0; }
	printf("]}\n");
	return 0;
}
`
