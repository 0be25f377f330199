package fastpath

import (
	"testing"
	"unsafe"
)

// The table entry and its timer are the memory per connection: 64 bytes,
// the goal for held connections.
func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(entry{}); s != entryBytes || connBytes != 64 {
		t.Fatalf("entry is %d bytes (%d declared), %d with its timer; want 64 in all", s, entryBytes, connBytes)
	}
}
