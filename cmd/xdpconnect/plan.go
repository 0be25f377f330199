package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseDst expands "IP:PORT", "CIDR:PORT" and port ranges ("IP:8080-8083")
// into a list of targets.
func parseDst(s string) ([]netip.AddrPort, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return nil, fmt.Errorf("--dst %q: want IP:PORT, CIDR:PORT or IP:LO-HI", s)
	}
	hostPart, portPart := s[:i], s[i+1:]
	ports, err := parsePorts(portPart)
	if err != nil {
		return nil, fmt.Errorf("--dst %q: %w", s, err)
	}
	addrs, err := parseAddrs(hostPart, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("--dst %q: %w", s, err)
	}
	var out []netip.AddrPort
	for _, a := range addrs {
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
		if !lo.Is4() || !hi.Is4() || hi.Less(lo) {
			return nil, fmt.Errorf("bad IPv4 range %q", s)
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
		if p.Bits() == 32 {
			return []netip.Addr{p.Addr()}, nil
		}
		if 32-p.Bits() > 16 {
			return nil, fmt.Errorf("prefix %s too large", s)
		}
		var out []netip.Addr
		first := p.Addr().Next()
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

func parseRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want LO-HI, got %q", s)
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x < 1 || y > 65535 || x > y {
		return 0, 0, fmt.Errorf("bad port range %q", s)
	}
	return uint16(x), uint16(y), nil
}

func netipPort(addr string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), port)
}
