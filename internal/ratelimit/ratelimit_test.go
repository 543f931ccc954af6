package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := New(3, time.Minute)
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true}, {"a", time.Second, true}, {"a", 2 * time.Second, true},
		{"a", 3 * time.Second, false}, // fourth in a minute
		{"b", 3 * time.Second, true},  // other clients unaffected
		{"a", 59 * time.Second, false},
		{"a", 61 * time.Second, true}, // the first hit left the window
		{"a", 62 * time.Second, true}, // the hits at 1s and 2s left it too
		{"a", 62 * time.Second, true},
		{"a", 62 * time.Second, false}, // 61s, 62s, 62s in the window
	}
	for i, s := range steps {
		if got := l.Allow(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (%s at %v): %v, want %v", i, s.key, s.at, got, s.want)
		}
	}
}

// Guesses racing each other get exactly max passes between them: the
// count and the record are one step.
func TestLimiterIsAtomic(t *testing.T) {
	l := New(5, time.Hour)
	now := time.Unix(0, 0)
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if l.Allow("victim", now) {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 5 {
		t.Fatalf("%d concurrent guesses passed, want 5", n)
	}
}

// A flood of fresh keys cannot push out the count of a key still in its
// window.
func TestLimiterTableBounded(t *testing.T) {
	l := New(1, time.Hour)
	now := time.Unix(0, 0)
	l.Allow("victim", now)
	for i := range MaxKeys + 10 {
		l.Allow(fmt.Sprint("flood-", i), now)
	}
	if len(l.hits) > MaxKeys {
		t.Fatalf("%d keys, bound %d", len(l.hits), MaxKeys)
	}
	if l.Allow("victim", now) {
		t.Fatal("the flood made the victim's count forgotten")
	}
}

func TestRefund(t *testing.T) {
	l := New(1, time.Hour)
	now := time.Unix(0, 0)
	l.Allow("k", now)
	l.Refund("k", now)
	if !l.Allow("k", now) {
		t.Fatal("a refunded event still counts")
	}
}
