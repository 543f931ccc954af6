package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/wire"
)

// Review resolution errors.
var (
	ErrBadPIN      = errors.New(event.RefusedBadPIN)
	ErrRateLimited = errors.New(event.RefusedRateLimited)
	ErrNoPINs      = errors.New(event.RefusedNoPINs)
	ErrBadAction   = errors.New("action must be approve or reject")
)

// PIN rate limit: this many wrong PINs per client within pinWindow, then
// every attempt is refused until the oldest failure leaves the window.
const (
	pinFailures = 5
	pinWindow   = time.Minute
)

// reviews tracks the open holds' deadlines and origins in memory; the state
// file is the record, this is the index the timeout sweep walks.
type reviews struct {
	mu   sync.Mutex
	open map[string]held
}

type held struct {
	deadline time.Time
	from     origin
}

func newReviews() *reviews { return &reviews{open: map[string]held{}} }

func (r *reviews) add(id string, deadline time.Time, from origin) {
	r.mu.Lock()
	r.open[id] = held{deadline, from}
	r.mu.Unlock()
}

func (r *reviews) remove(id string) (held, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.open[id]
	delete(r.open, id)
	return h, ok
}

func (r *reviews) due(now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, h := range r.open {
		if !now.Before(h.deadline) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// pinLimiter counts wrong PINs per client.
type pinLimiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

func newPINLimiter() *pinLimiter { return &pinLimiter{failures: map[string][]time.Time{}} }

func (l *pinLimiter) recent(client string, now time.Time) []time.Time {
	f := l.failures[client]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= pinWindow {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, client)
		return nil
	}
	l.failures[client] = f
	return f
}

func (l *pinLimiter) allowed(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(client, now)) < pinFailures
}

func (l *pinLimiter) fail(client string, now time.Time) {
	l.mu.Lock()
	l.failures[client] = append(l.recent(client, now), now)
	l.mu.Unlock()
}

// checkPIN compares pin with the configured bcrypt hashes and returns the
// name of the manager whose PIN it is ("" for an unnamed entry).
func (a *Agent) checkPIN(client, pin string) (string, error) {
	now := a.now()
	if !a.limiter.allowed(client, now) {
		a.m.pinFailures.Inc()
		return "", ErrRateLimited
	}
	pins := a.live.Load().ManagerPINs
	if len(pins) == 0 {
		return "", ErrNoPINs
	}
	for _, entry := range pins {
		name, hash := config.SplitPIN(entry)
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pin)) == nil {
			return name, nil
		}
	}
	a.limiter.fail(client, now)
	a.m.pinFailures.Inc()
	return "", ErrBadPIN
}

// Resolve approves or rejects a held review after checking the manager
// PIN; client identifies the caller for the rate limit. An approval
// forwards the held token to the POS (when the sale came from the scanner
// or its origin is unknown after a restart) exactly once: a repeated
// resolution with the same action changes nothing.
func (a *Agent) Resolve(ctx context.Context, id, action, pin, by, client string) (state.Review, error) {
	if action != event.Approve && action != event.Reject {
		return state.Review{}, ErrBadAction
	}
	manager, err := a.checkPIN(client, pin)
	if err != nil {
		a.log.Warn("review resolution refused", "review", id, "client", client, "err", err)
		return state.Review{}, err
	}
	// The PIN says who confirmed it; by says where (a display, a POS).
	if manager != "" {
		by = manager + " at " + by
	}
	return a.resolve(ctx, id, action, by)
}

func (a *Agent) resolve(ctx context.Context, id, action, by string) (state.Review, error) {
	r, changed, err := a.st.ResolveReview(context.WithoutCancel(ctx), id, event.ResolutionInfo{Action: action, By: by, At: a.now()})
	if err != nil {
		if errors.Is(err, state.ErrAlreadyResolved) {
			a.reviews.remove(id)
		}
		return state.Review{}, err
	}
	if !changed {
		return r, nil
	}
	h, _ := a.reviews.remove(id)
	a.m.resolutions.WithLabelValues(action).Inc()
	a.log.Info("review resolved", "review", id, "action", action, "by", by)
	if a.hq != nil {
		a.hq.Kick()
	}
	if h.from == originHTTP {
		return r, nil // the HTTP caller asks GET /v1/reviews/{id}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch action {
	case event.Approve:
		if a.forward(scan.Scan{Data: r.Token, Symbology: scan.Infer(r.Token), At: a.now()}) || a.pos == nil {
			a.feedback(fctx, "good")
		}
	case event.Reject:
		a.feedback(fctx, "deny")
	}
	return r, nil
}

// timeoutReviews drops the holds whose deadline has passed.
func (a *Agent) timeoutReviews(ctx context.Context) {
	for _, id := range a.reviews.due(a.now()) {
		if _, err := a.resolve(ctx, id, event.Timeout, "agent"); err != nil {
			if errors.Is(err, state.ErrNoReview) {
				a.reviews.remove(id)
			}
			a.log.Warn("review timeout not recorded", "review", id, "err", err)
		}
	}
}

// command applies a display's resolve command from HQ's broker: the same
// PIN check and rate limit as the HTTP API, applied once per command id.
func (a *Agent) command(ctx context.Context, c wire.Command) error {
	a.cmdsMu.Lock()
	_, dup := a.cmds[c.ID]
	a.cmdsMu.Unlock()
	if dup {
		return nil
	}
	_, err := a.Resolve(ctx, c.ReviewID, string(c.Action), c.PIN.Reveal(), c.By, "mqtt")
	if err == nil || errors.Is(err, state.ErrAlreadyResolved) || errors.Is(err, state.ErrNoReview) {
		a.cmdsMu.Lock()
		if len(a.cmds) > 10_000 {
			clear(a.cmds)
		}
		a.cmds[c.ID] = struct{}{}
		a.cmdsMu.Unlock()
	}
	if code, why := refusalOf(err); code != "" {
		a.refuseCommand(ctx, c, code, why)
	}
	if err != nil {
		return fmt.Errorf("resolve review %s: %w", c.ReviewID, err)
	}
	return nil
}

// refusalOf names the refusal a display is told about, and the sentinel
// whose sentence goes into the event's detail (the full error may carry
// state file details that are nobody's business on a store's screen).
// Other errors (storage) are the register's own trouble: the display times
// the command out and the manager tries again.
func refusalOf(err error) (event.Code, error) {
	for _, r := range []struct {
		err  error
		code event.Code
	}{
		{ErrBadPIN, event.CodeWrongPIN},
		{ErrRateLimited, event.CodeRateLimited},
		{ErrNoPINs, event.CodeNoPINs},
		{state.ErrNoReview, event.CodeUnknownReview},
		{state.ErrAlreadyResolved, event.CodeAlreadyResolved},
	} {
		if errors.Is(err, r.err) {
			return r.code, r.err
		}
	}
	return "", nil
}

// refuseCommand tells the display, through the outbox and the alerts topic,
// that the register refused its resolution, so the page says why instead of
// waiting for an answer that never comes. The event names the review, the
// attempted action and who sent it; never the PIN.
func (a *Agent) refuseCommand(ctx context.Context, c wire.Command, code event.Code, why error) {
	now := a.now()
	_, err := a.st.Append(context.WithoutCancel(ctx), event.Event{Type: event.Refusal, At: now, Code: code,
		Detail:     fmt.Sprintf("resolution of review %s refused: %v", c.ReviewID, why),
		Resolution: &event.ResolutionInfo{ReviewID: c.ReviewID, Action: string(c.Action), By: c.By, At: now}})
	if err != nil {
		a.log.Error("record refused resolution", "review", c.ReviewID, "err", err)
		return
	}
	if a.hq != nil {
		a.hq.Kick()
	}
}
