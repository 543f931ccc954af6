package agent

import (
	"fmt"
	"sync"
	"time"
)

// Manager PIN limits. A 4-digit PIN falls to 10,000 guesses, so guesses are
// counted where the attacker cannot spread them: per register, whatever the
// source (HTTP from any address, display commands over MQTT alike), and per
// review. At pinPerRegister a window the whole space takes ten days and HQ
// hears of it after the first ten; a review is refused after pinPerReview
// wrong PINs for as long as it can be open.
const (
	pinPerRegister    = 10
	pinRegisterWindow = 15 * time.Minute
	pinPerReview      = 5
	pinReviewWindow   = 24 * time.Hour // longer than any review is held
	// pinRetryAfter is the Retry-After of a refused attempt: by then the
	// oldest counted attempt has left the register's window.
	pinRetryAfter = pinRegisterWindow
	// pinMaxReviews bounds the per-review table; beyond it, reviews
	// with no attempt in the window are forgotten first.
	pinMaxReviews = 1024
)

// pinGuard counts manager PIN attempts. An attempt is counted before its
// PIN is compared, in the same critical section as the check, so concurrent
// guesses cannot all pass the check before any is counted; a right PIN
// gives its attempt back.
type pinGuard struct {
	mu       sync.Mutex
	register []time.Time
	review   map[string][]time.Time
}

func newPINGuard() *pinGuard { return &pinGuard{review: map[string][]time.Time{}} }

// pinTicket is one counted attempt. full is set when this attempt used up
// a limit: if its PIN is wrong, that is the moment to raise the alarm.
type pinTicket struct {
	review string
	at     time.Time
	full   string
}

func within(at []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(at) && now.Sub(at[i]) >= window {
		i++
	}
	return at[i:]
}

// take counts an attempt at review, or refuses it with ErrRateLimited
// when either limit is used up.
func (g *pinGuard) take(review string, now time.Time) (pinTicket, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.register = within(g.register, now, pinRegisterWindow)
	rv := within(g.review[review], now, pinReviewWindow)
	if len(g.register) >= pinPerRegister || len(rv) >= pinPerReview {
		return pinTicket{}, ErrRateLimited
	}
	if _, known := g.review[review]; !known && len(g.review) >= pinMaxReviews {
		g.forget(now)
	}
	g.register = append(g.register, now)
	rv = append(rv, now)
	g.review[review] = rv
	t := pinTicket{review: review, at: now}
	switch {
	case len(g.register) == pinPerRegister:
		t.full = fmt.Sprintf("%d wrong PINs at this register within %v", pinPerRegister, pinRegisterWindow)
	case len(rv) == pinPerReview:
		t.full = fmt.Sprintf("%d wrong PINs for this review", pinPerReview)
	}
	return t, nil
}

// forget drops the reviews with no attempt in their window. Must hold mu.
// Every kept entry has taken a register slot within pinReviewWindow, so the
// table stays small without evicting live counts.
func (g *pinGuard) forget(now time.Time) {
	for id, at := range g.review {
		if at = within(at, now, pinReviewWindow); len(at) == 0 {
			delete(g.review, id)
		} else {
			g.review[id] = at
		}
	}
}

// refund gives back the attempt of a right PIN.
func (g *pinGuard) refund(t pinTicket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.register = drop(g.register, t.at)
	if rv := drop(g.review[t.review], t.at); len(rv) > 0 {
		g.review[t.review] = rv
	} else {
		delete(g.review, t.review)
	}
}

// drop removes one occurrence of at.
func drop(list []time.Time, at time.Time) []time.Time {
	for i := range list {
		if list[i].Equal(at) {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}
