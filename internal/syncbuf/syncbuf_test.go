package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writes and reads lose nothing (and -race finds no race).
func TestConcurrentWriteRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Fatalf("%d bytes, want 400", len(got))
	}
}
