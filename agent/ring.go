package agent

import (
	"cmp"
	"slices"
	"sync"

	"github.com/posguard/posguard/event"
)

// ring keeps the last n decision events for GET /v1/events: the outbox
// loses them once HQ acknowledges, and a till display wants the last few
// even then.
type ring struct {
	mu   sync.Mutex
	buf  []event.Event
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]event.Event, n)} }

func (r *ring) add(ev event.Event) {
	r.mu.Lock()
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// after returns up to limit events with Seq > seq, in Seq order.
func (r *ring) after(seq uint64, limit int) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	start, n := 0, r.next
	if r.full {
		start, n = r.next, len(r.buf)
	}
	out := []event.Event{}
	for i := 0; i < n; i++ {
		if ev := r.buf[(start+i)%len(r.buf)]; ev.Seq > seq {
			out = append(out, ev)
		}
	}
	// Concurrent decisions may commit in one order and arrive here in
	// another.
	slices.SortFunc(out, func(a, b event.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
