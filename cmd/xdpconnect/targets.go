package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect"
)

// parseTargets expands "IP:PORT", "CIDR:PORT", port ranges ("IP:8080-8083")
// and "HOST:PORT" (every address of the name, IPv4 first) into
// targets, and rejects what no TCP connection can reach, in words, with
// connect()'s errno. IPv6 addresses and prefixes go in brackets:
// "[2001:2::2]:80", "[2001:2::/120]:80". Messages name the flag --dst.
func parseTargets(s string) ([]netip.AddrPort, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return nil, fmt.Errorf("--dst %q: want IP:PORT, [IPv6]:PORT, CIDR:PORT or IP:LO-HI", s)
	}
	hostPart, portPart := s[:i], s[i+1:]
	if strings.HasPrefix(hostPart, "[") != strings.HasSuffix(hostPart, "]") || !strings.HasPrefix(hostPart, "[") && strings.Contains(hostPart, ":") {
		return nil, fmt.Errorf("--dst %q: an IPv6 address goes in brackets: [2001:2::2]:80", s)
	}
	hostPart = strings.TrimSuffix(strings.TrimPrefix(hostPart, "["), "]")
	ports, err := parsePorts(portPart)
	if err != nil {
		return nil, fmt.Errorf("--dst %q: %w", s, err)
	}
	addrs, err := parseAddrs(hostPart, 1<<16)
	named := ""
	if err != nil {
		if addrs, err = resolveHost(hostPart); err != nil {
			return nil, fmt.Errorf("--dst %q: %w", s, err)
		}
		named = hostPart + " = "
	}
	// Bound the expansion before allocating it: a /16 times all ports is
	// four billion targets.
	if n := len(addrs) * len(ports); n > xdpconnect.MaxTargets {
		return nil, fmt.Errorf("--dst %q: %d addresses x %d ports = %d targets; at most %d per run", s, len(addrs), len(ports), n, xdpconnect.MaxTargets)
	}
	var out []netip.AddrPort
	for _, a := range addrs {
		if err := xdpconnect.CheckTarget(a); err != nil {
			return nil, fmt.Errorf("--dst %s%s: %w", named, a, err)
		}
		for _, p := range ports {
			out = append(out, netip.AddrPortFrom(a, uint16(p)))
		}
	}
	return out, nil
}

// parseAddrs expands an address, a CIDR prefix or a range "A-B" (at most
// limit addresses). A prefix of more than one address leaves out its network
// and broadcast addresses, which connect() rejects.
func parseAddrs(s string, limit int) ([]netip.Addr, error) {
	if a, b, ok := strings.Cut(s, "-"); ok {
		lo, err := netip.ParseAddr(a)
		if err != nil {
			return nil, err
		}
		hi, err := netip.ParseAddr(b)
		if err != nil {
			return nil, err
		}
		if lo.Is4() != hi.Is4() || hi.Less(lo) || lo.Zone() != "" || hi.Zone() != "" {
			return nil, fmt.Errorf("bad address range %q", s)
		}
		var out []netip.Addr
		for x := lo; ; x = x.Next() {
			out = append(out, x)
			if len(out) > limit {
				return nil, fmt.Errorf("range %q has more than %d addresses", s, limit)
			}
			if x == hi {
				break
			}
		}
		return out, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		p = p.Masked()
		host := p.Addr().BitLen() - p.Bits()
		if host == 0 {
			return []netip.Addr{p.Addr()}, nil
		}
		if host > 16 {
			return nil, fmt.Errorf("prefix %s too large", s)
		}
		var out []netip.Addr
		first := p.Addr().Next()
		if p.Addr().Is6() {
			// IPv6 has no broadcast address: only the subnet-router
			// anycast address (all host bits 0) is left out.
			for x := first; p.Contains(x); x = x.Next() {
				out = append(out, x)
			}
			return out, nil
		}
		for x := first; p.Contains(x) && p.Contains(x.Next()); x = x.Next() {
			out = append(out, x)
		}
		return out, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, err
	}
	return []netip.Addr{a}, nil
}

// resolveHost looks a host name up as a dialer would and returns all its
// addresses, IPv4 ones first.
func resolveHost(h string) ([]netip.Addr, error) {
	if h == "" || strings.ContainsAny(h, "/ ") {
		return nil, fmt.Errorf("want IP:PORT, CIDR:PORT or HOST:PORT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
	if err != nil {
		return nil, fmt.Errorf("%q is neither an IP address nor a host name that resolves: give an IP address", h)
	}
	// Every address is a target, as a client that round-robins over the
	// name's records would reach them all; IPv4 first, each once.
	var out []netip.Addr
	for _, v4 := range []bool{true, false} {
		for _, ip := range ips {
			if ip = ip.Unmap(); ip.Is4() == v4 && !slices.Contains(out, ip) {
				out = append(out, ip)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no address", h)
	}
	return out, nil
}

// parsePortRange parses "LO-HI".
func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want LO-HI, got %q", s)
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x < 1 || y > 65535 || x > y {
		return 0, 0, fmt.Errorf("%q: want LO-HI with 1 <= LO <= HI <= 65535", s)
	}
	return uint16(x), uint16(y), nil
}

// parsePorts parses a list of ports and ranges: "8080,9000-9003".
func parsePorts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad port %q", f)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("bad port %q", f)
			}
		}
		if a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("bad port range %q", f)
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out, nil
}
