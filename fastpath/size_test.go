package fastpath

import (
	"testing"
	"unsafe"
)

// The table entry is the memory per connection: keep it at 64 bytes (one
// cache line), the goal for held connections.
func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(entry{}); s != entryBytes {
		t.Fatalf("entry is %d bytes, want %d", s, entryBytes)
	}
}
