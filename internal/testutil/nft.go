package testutil

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Nft loads an nftables ruleset into namespace ns (`nft -f -`); the kernel
// here has no netem, so faults are injected with nftables (drop, reject,
// numgen for random loss). The rules go away with the namespace.
func Nft(tb testing.TB, ns, ruleset string) {
	tb.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		tb.Fatal("nft not installed (Debian package nftables; .ci/run installs it)")
	}
	if err := NftErr(ns, ruleset); err != nil {
		tb.Fatal(err)
	}
}

// NftErr loads an nftables ruleset into namespace ns and returns what went
// wrong; for goroutines other than the test's, which must not call Fatal.
func NftErr(ns, ruleset string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v\n%s\n%s", ns, err, out, ruleset)
	}
	return nil
}
