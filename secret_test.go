package xdpconnect

import (
	"os"
	"path/filepath"
	"testing"
)

// The per-boot key is made once and read back the same by every later
// run; only root may read it; a damaged file is refused, not taken as a
// key of zeros or of its first bytes.
func TestBootKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "secret")
	a, err := bootKey(path)
	if err != nil || a == ([16]byte{}) {
		t.Fatalf("first key %x: %v", a, err)
	}
	b, err := bootKey(path)
	if err != nil || b != a {
		t.Fatalf("second read %x (%v), first %x", b, err, a)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v: %v", st.Mode(), err)
	}
	if err := os.WriteFile(path, []byte("0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := bootKey(path); err == nil {
		t.Fatalf("a damaged key file read as %x", k)
	}
}
