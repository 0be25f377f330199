package xdpconnect_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect"
)

// Open a session towards one target and run a bounded load: 10,000
// handshakes at 50,000 attempts/s, each closed with RST.
func Example() {
	ctx := context.Background()
	s, err := xdpconnect.Open(ctx, xdpconnect.Options{
		Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:8080")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	r, err := s.Run(ctx, xdpconnect.Plan{Count: 10000, Rate: 50000, Close: xdpconnect.CloseRST, Drain: 5 * time.Second}, xdpconnect.RunHooks{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d established, %.0f handshakes/s, p99 %.0f µs\n", r.Established, r.CPS, r.RTT.P99*1e6)
	for _, f := range r.Diagnosis {
		fmt.Println(f.Cause, "->", f.Fix)
	}
}

// Dial one connection as a blocking connect() would: the kernel's errors.
func ExampleSession_Dial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dst := netip.MustParseAddrPort("198.18.0.2:8080")
	s, err := xdpconnect.Open(ctx, xdpconnect.Options{Targets: []netip.AddrPort{dst}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	c, err := s.Dial(ctx, dst)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		fmt.Println("nothing listens on", dst)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("connected from", c.Local)
		c.Close()
	}
}

// net/http over the engine: the session's DialContext as the transport's.
// Each connection is the engine's TCP, its errors the kernel's.
func ExampleSession_DialContext() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dst := netip.MustParseAddrPort("198.18.0.2:80")
	s, err := xdpconnect.Open(ctx, xdpconnect.Options{Targets: []netip.AddrPort{dst}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}}
	resp, err := client.Get("http://198.18.0.2/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, len(body), "bytes")
}
