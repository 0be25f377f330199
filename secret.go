package xdpconnect

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretPath is where the host's per-boot secret lives: /run is a tmpfs,
// emptied at every boot, as the kernel's net_secret is made anew.
const secretPath = "/run/xdpconnect/secret"

// bootKey is the host's per-boot key for the ISN and timestamp hash (I1,
// I4), made on first use and kept at path (root only). Every run on the
// host until the next boot keys its ISNs alike, so with the ISN's clock
// on the host's time a 4-tuple reused by the next run gets a later ISN
// and TSval, as a kernel client's would: a server still holding the
// 4-tuple in TIME-WAIT takes its SYN as a new connection instead of
// answering it with an ACK (a key made per run did that for half of the
// reused tuples, each SYN then waiting a second for its retransmission).
func bootKey(path string) (k [16]byte, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return k, err
	}
	var fresh [16]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return k, err
	}
	// Exclusive create: of two runs starting at once, one writes the key
	// and both read it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := f.WriteString(hex.EncodeToString(fresh[:]) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return k, werr
		}
		return fresh, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return k, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return k, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != len(k) {
		// A half-written key (its writer still at work) or a damaged file.
		return k, fmt.Errorf("%s: not a key (32 hex digits): remove it", path)
	}
	copy(k[:], raw)
	return k, nil
}
