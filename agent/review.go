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
	ErrPINGuessing = errors.New(event.RefusedPINGuessing)
	ErrBadAction   = errors.New("action must be approve or reject")
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

// checkPIN counts the attempt (see pinGuard), then compares pin with the
// configured bcrypt hashes and returns the name of the manager whose PIN it
// is ("" for an unnamed entry). A wrong PIN that uses up a limit raises the
// PIN guessing alert and returns ErrPINGuessing with ErrBadPIN.
func (a *Agent) checkPIN(ctx context.Context, id, action, by, client, pin string) (string, error) {
	pins := a.live.Load().ManagerPINs
	if len(pins) == 0 {
		return "", ErrNoPINs
	}
	t, err := a.pins.take(id, a.now())
	if err != nil {
		a.m.pinFailures.Inc()
		return "", err
	}
	for _, entry := range pins {
		name, hash := config.SplitPIN(entry)
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pin)) == nil {
			a.pins.refund(t)
			return name, nil
		}
	}
	a.m.pinFailures.Inc()
	if t.full == "" {
		return "", ErrBadPIN
	}
	a.pinGuessing(ctx, id, action, by, client, t.full)
	return "", fmt.Errorf("%w (%w)", ErrBadPIN, ErrPINGuessing)
}

// pinGuessing tells the displays and HQ, through the outbox and the alerts
// topic, that wrong PINs used up a limit: a refusal event for the review
// with code pin_guessing. Raised once each time a
// limit fills, for HTTP and MQTT attempts alike; never carries the PIN.
func (a *Agent) pinGuessing(ctx context.Context, id, action, by, client, why string) {
	now := a.now()
	a.log.Warn("manager PIN guessing", "review", id, "client", client, "limit", why)
	_, err := a.st.Append(context.WithoutCancel(ctx), event.Event{Type: event.Refusal, At: now, Code: event.CodePINGuessing,
		Detail:     fmt.Sprintf("resolution of review %s refused: %s, the last from %s; %s", id, why, client, event.RefusedPINGuessing),
		Resolution: &event.ResolutionInfo{ReviewID: id, Action: action, By: by, At: now}})
	if err != nil {
		a.log.Error("record PIN guessing alert", "review", id, "err", err)
		return
	}
	if a.hq != nil {
		a.hq.Kick()
	}
}

// Resolve approves or rejects a held review after checking the manager
// PIN; client says where the attempt came from (for the log and the PIN
// guessing alert; the limits do not depend on it). An approval
// forwards the held token to the POS (when the sale came from the scanner
// or its origin is unknown after a restart) exactly once: a repeated
// resolution with the same action changes nothing.
func (a *Agent) Resolve(ctx context.Context, id, action, pin, by, client string) (state.Review, error) {
	if action != event.Approve && action != event.Reject {
		return state.Review{}, ErrBadAction
	}
	manager, err := a.checkPIN(ctx, id, action, by, client, pin)
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
	// A guess that raised the PIN guessing alert is already recorded.
	if code, why := refusalOf(err); code != "" && !errors.Is(err, ErrPINGuessing) {
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
