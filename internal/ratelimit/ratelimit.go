// Package ratelimit counts guesses: login attempts at the store display and
// the HQ console, PINs sent to registers. Each check records its event in
// the same critical section that counts, so concurrent guesses can never
// all pass a check that only one of them should.
package ratelimit

import (
	"sync"
	"time"
)

// MaxKeys bounds a limiter's table; beyond it, keys with no recent hits are
// forgotten first, and when none can be, new keys are refused (a flood of
// addresses must not make room for guesses by forgetting old ones).
const MaxKeys = 4096

// Limiter allows at most max events per key in any window.
type Limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	hits map[string][]time.Time
}

// New makes a limiter of max events per window per key.
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, hits: map[string][]time.Time{}}
}

// Window is the limiter's window.
func (l *Limiter) Window() time.Duration { return l.window }

// Allow records an event for key at now and reports whether it is within
// the limit. A refused event is not recorded, so waiting always helps.
func (l *Limiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := now.Add(-l.window)
	h := l.hits[key]
	i := 0
	for i < len(h) && !h[i].After(cut) {
		i++
	}
	h = h[i:]
	if len(h) >= l.max {
		l.hits[key] = h
		return false
	}
	if len(l.hits) >= MaxKeys {
		for k, v := range l.hits {
			if len(v) == 0 || !v[len(v)-1].After(cut) {
				delete(l.hits, k)
			}
		}
		if len(l.hits) >= MaxKeys {
			return false
		}
	}
	l.hits[key] = append(h, now)
	return true
}

// Refund takes back one event of key that Allow recorded at at, for an
// event that turns out not to count.
func (l *Limiter) Refund(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hits[key]
	for i := range h {
		if h[i].Equal(at) {
			l.hits[key] = append(h[:i:i], h[i+1:]...)
			return
		}
	}
}
