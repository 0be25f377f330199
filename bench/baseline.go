package bench

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// BaselineResult is what a kernel-connect baseline reports.
type BaselineResult struct {
	Handshakes uint64  `json:"handshakes"`
	Errors     uint64  `json:"errors"`
	Seconds    float64 `json:"seconds"`
}

// GoDial is the Go net.Dialer baseline: conns goroutines connect, close
// with RST (SO_LINGER 0, like xdpconnect's rst mode) and repeat for d. It
// must run in the client's network namespace (the harness execs it there).
func GoDial(dst string, conns int, d time.Duration, out io.Writer) error {
	var n, errs atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := dialer.DialContext(ctx, "tcp4", dst)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				n.Add(1)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(out).Encode(BaselineResult{Handshakes: n.Load(), Errors: errs.Load(), Seconds: time.Since(start).Seconds()})
}

// EpollC is the C epoll nonblocking-connect baseline: conns sockets in
// flight, each closed with RST once connected, for a duration.
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

static struct sockaddr_in dst;
static int ep;
static unsigned long long ok, errs;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void start(void) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) { errs++; return; }
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) { errs++; close(fd); return; }
	struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv) {
	if (argc != 5) { fprintf(stderr, "usage: epoll IP PORT SECONDS CONNS\n"); return 2; }
	dst.sin_family = AF_INET;
	inet_pton(AF_INET, argv[1], &dst.sin_addr);
	dst.sin_port = htons(atoi(argv[2]));
	double dur = atof(argv[3]);
	int conns = atoi(argv[4]);
	ep = epoll_create1(0);
	for (int i = 0; i < conns; i++) start();
	struct epoll_event evs[256];
	double t0 = now(), end = t0 + dur;
	while (now() < end) {
		int n = epoll_wait(ep, evs, 256, 10);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, err = 0;
			socklen_t len = sizeof err;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0) ok++; else errs++;
			close(fd);
			start();
		}
	}
	printf("{\"handshakes\":%llu,\"errors\":%llu,\"seconds\":%f}\n", ok, errs, now() - t0);
	return 0;
}
`
