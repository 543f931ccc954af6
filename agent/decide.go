package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/token"
	"github.com/posguard/posguard/wire"
)

// origin is where a sale came from, which says who acts on its outcome.
type origin int

const (
	originUnknown origin = iota // a review restored after a restart
	originScanner               // the serial pipeline: the agent tells the POS
	originHTTP                  // POST /v1/decide: the caller tells the POS
)

// CartLine is one item of a sale: a barcode and how many times it was
// scanned.
type CartLine struct {
	JAN      string `json:"jan"`
	Quantity int    `json:"quantity"`
}

// Sale is what a decision is asked about.
type Sale struct {
	Lines []CartLine
	Token []byte
	// IdempotencyKey, when set, makes a retry of the same request get the
	// first answer back instead of a fresh decision (which would find its
	// token replayed). Fingerprint identifies the request; a key reused
	// for another request is refused with ErrIdempotencyMismatch.
	IdempotencyKey string
	Fingerprint    string
	// Refuse, when set, denies the sale whatever the policy says, with
	// this reason (a cart past its bounds: "the cart has more than …").
	Refuse string
}

// IdempotencyTTL is how long an Idempotency-Key is answered.
const IdempotencyTTL = 24 * time.Hour

// ErrIdempotencyMismatch: the Idempotency-Key was first used for another
// request.
var ErrIdempotencyMismatch = errors.New("idempotency key was used for a different request")

// Result is a decision as the caller sees it.
type Result struct {
	SaleID   string          `json:"saleId"`
	Outcome  policy.Outcome  `json:"outcome"`
	Decision policy.Decision `json:"decision"`
	ReviewID string          `json:"reviewId,omitempty"`
	// Deadline is when a held review times out.
	Deadline time.Time `json:"deadline,omitzero"`
	EventID  string    `json:"eventId,omitempty"`
	// Message is what the POS shows the clerk: the fired rules' reasons in
	// the configured language (messages.language), one per line; empty
	// when nothing fired.
	Message string `json:"message,omitempty"`
	// Error is set when the decision could not be made durable: the
	// payment is then refused (Outcome deny), never allowed.
	Error string `json:"error,omitempty"`
	// Replayed is true when the answer is the stored one of an earlier
	// request with the same idempotency key.
	Replayed bool `json:"-"`
}

// ErrNotDurable wraps a commit failure: the sale was refused because its
// decision could not be stored.
var ErrNotDurable = errors.New("decision not stored; payment refused")

// ErrAbandoned: the caller's context ended before the decision was stored,
// so none was made.
var ErrAbandoned = errors.New("caller went away before the decision was stored; nothing decided")

// Decide decides one payment over HTTP: the same pipeline and durability
// as a token from the scanner, without the serial actions. With an
// idempotency key already answered it returns that answer (Replayed) and
// decides nothing.
func (a *Agent) Decide(ctx context.Context, sale Sale) (Result, error) {
	if sale.IdempotencyKey != "" {
		if res, ok, err := a.answered(sale); ok || err != nil {
			return res, err
		}
	}
	return a.decide(ctx, sale, originHTTP)
}

// answered looks up the stored answer to sale's idempotency key.
func (a *Agent) answered(sale Sale) (Result, bool, error) {
	ans, ok, err := a.st.Answer(sale.IdempotencyKey, a.now())
	if err != nil || !ok {
		return Result{}, false, err
	}
	if ans.Fingerprint != sale.Fingerprint {
		return Result{}, false, fmt.Errorf("Idempotency-Key %q: %w", sale.IdempotencyKey, ErrIdempotencyMismatch)
	}
	var res Result
	if err := json.Unmarshal(ans.Response, &res); err != nil {
		return Result{}, false, fmt.Errorf("stored answer of Idempotency-Key %q: %w", sale.IdempotencyKey, err)
	}
	res.EventID, res.Replayed = ans.EventID, true
	a.m.idemReplays.Inc()
	a.log.Info("decide retry answered from its idempotency key", "sale", res.SaleID, "outcome", res.Outcome)
	return res, true, nil
}

// decide verifies the token, evaluates the sale, and commits replay mark,
// history, review hold and outbox event in one transaction. Only a nil
// error means the decision is durable and may be acted on; on a commit
// failure the Result says deny.
func (a *Agent) decide(ctx context.Context, sale Sale, from origin) (Result, error) {
	began := time.Now()
	at := a.now()
	act := a.pol.Load()
	cfg := a.base
	req := policy.Request{SaleID: a.newSaleID(at), Store: cfg.Store, Register: cfg.Register, At: at, Offline: a.offline(at)}
	req.Lines = make([]policy.Line, 0, len(sale.Lines))
	for _, l := range sale.Lines {
		line := policy.Line{JAN: l.JAN, Category: "unknown", Quantity: l.Quantity}
		if act.p != nil {
			if it, ok := act.p.Item(l.JAN); ok {
				line.Category, line.UnitPrice = it.Category, it.UnitPrice
			}
		}
		req.Lines = append(req.Lines, line)
	}
	tok, verr := act.verifier.Verify(sale.Token, at, a.st)
	req.Payment = token.PaymentFor(tok, verr)
	// Only a verified token's account may be excused: a forged one could
	// name any account on the allowlist.
	req.Allowlisted = verr == nil && req.Payment.Account != "" && a.st.Allowlisted(req.Payment.Account, at)
	// A token too long for any wallet is probing: it is decided and sent
	// to HQ like any refused token, so the probing is seen, but always
	// denied. Held for review (failMode.invalidToken: review) it would be
	// stored whole, and an approval would forward it to the POS.
	oversized := token.ReasonOf(verr) == token.TooLong
	rec := state.Record{Request: &req}
	if verr == nil && tok.ReplayKey != "" {
		rec.ReplayKey = tok.ReplayKey
		if !tok.ExpiresAt.IsZero() && act.p != nil {
			// Past expiry plus skew the token is refused anyway.
			rec.ReplayExpires = tok.ExpiresAt.Add(act.p.Tokens.ClockSkew.D() + time.Minute)
		}
	}
	timeout := a.live.Load().Review.Timeout
	lang := a.live.Load().Messages.Language
	var res Result
	evaluate := func() error {
		d := a.evaluate(act, req)
		if sale.Refuse != "" {
			d.Rules = append(d.Rules, policy.RangeFired(sale.Refuse))
			d.Outcome = policy.Deny
		}
		if oversized {
			d = denyToken(d)
		}
		rec.Decision = &d
		rec.Review = nil
		res = Result{SaleID: req.SaleID, Outcome: d.Outcome, Decision: d, Message: strings.Join(reason.Decision(lang, d), "\n")}
		if d.Outcome == policy.Review {
			rec.Review = &state.Review{ID: req.SaleID, SaleID: req.SaleID, Token: sale.Token, Created: at, Deadline: at.Add(timeout)}
			res.ReviewID, res.Deadline = rec.Review.ID, rec.Review.Deadline
		}
		if sale.IdempotencyKey != "" {
			// The answer is stored with the decision, so a retry gets
			// exactly what this call returns (less the event id, which
			// the commit assigns and stores beside it).
			body, err := json.Marshal(res)
			if err != nil {
				return fmt.Errorf("encode answer of sale %s: %w", req.SaleID, err)
			}
			rec.Idempotent = &state.Idempotent{Key: sale.IdempotencyKey, Fingerprint: sale.Fingerprint, Response: body, Expires: at.Add(IdempotencyTTL)}
		}
		return nil
	}
	err := evaluate()
	// A caller that has gone away (its request context ended) gets no
	// decision: Commit checks ctx under the write lock and writes nothing,
	// so no allow is stored, and no token used, for a sale nobody
	// completes. Once the transaction runs it finishes whatever ctx does.
	var ev event.Event
	if err == nil {
		ev, err = a.st.Commit(ctx, rec)
	}
	if errors.Is(err, state.ErrReplayed) {
		// A concurrent decision used this token first.
		a.log.Warn("token used by a concurrent decision; deciding it as replayed", "sale", req.SaleID)
		req.Payment.Invalid = string(token.Replayed)
		rec.ReplayKey, rec.ReplayExpires = "", time.Time{}
		if err = evaluate(); err == nil {
			ev, err = a.st.Commit(ctx, rec)
		}
	}
	if errors.Is(err, state.ErrIdempotent) {
		// A retry with this key committed while this one was deciding.
		if r, ok, aerr := a.answered(sale); ok || aerr != nil {
			return r, aerr
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("caller went away before the decision was stored; nothing decided", "sale", req.SaleID, "would-be", res.Outcome, "err", err)
		res.Outcome = policy.Deny
		res.Error = ErrAbandoned.Error()
		return res, fmt.Errorf("decide sale %s: %w: %w", req.SaleID, ErrAbandoned, err)
	}
	if err != nil {
		a.m.commitErrors.Inc()
		a.m.decisions.WithLabelValues(string(policy.Deny)).Inc()
		a.log.Error("decision could not be stored; payment refused", "sale", req.SaleID, "would-be", res.Outcome, "err", err)
		res.Outcome = policy.Deny
		res.Error = "decision could not be stored; payment refused: " + err.Error()
		return res, fmt.Errorf("decide sale %s: %w: %w", req.SaleID, ErrNotDurable, err)
	}
	res.EventID = ev.ID
	if rec.Review != nil {
		a.reviews.add(rec.Review.ID, rec.Review.Deadline, from)
	}
	a.m.latency.Observe(time.Since(began).Seconds())
	a.m.decisions.WithLabelValues(string(res.Outcome)).Inc()
	for _, f := range res.Decision.Rules {
		a.m.rules.WithLabelValues(f.ID, f.Mode).Inc()
	}
	a.recent.add(ev)
	sum := &wire.DecisionSummary{SaleID: req.SaleID, Outcome: string(res.Outcome), At: at}
	for _, f := range res.Decision.Rules {
		if len(sum.Rules) < 64 {
			sum.Rules = append(sum.Rules, f.ID)
		}
	}
	a.last.Store(sum)
	if a.hq != nil {
		a.hq.Kick()
		a.hq.StatusChanged()
	}
	a.log.Info("decision", "sale", req.SaleID, "outcome", res.Outcome, "kind", req.Payment.Kind,
		"invalid", req.Payment.Invalid, "rules", sum.Rules, "failMode", res.Decision.FailMode, "offline", res.Decision.Offline)
	return res, nil
}

// evaluate runs the policy, or failMode when there is no valid one.
func (a *Agent) evaluate(act *active, req policy.Request) policy.Decision {
	ok, fm := act.valid(req.At, req.Store)
	if ok {
		return policy.Evaluate(act.p, req, a.st)
	}
	d := policy.EvaluateFailMode(fm, req)
	if act.p != nil {
		d.Policy = policy.PolicyRef{Name: act.p.Metadata.Name, Version: act.p.Metadata.Version}
	}
	return d
}

// denyToken makes d a deny for a token refused outright: the token rule's
// review, if failMode.invalidToken chose one, becomes a deny.
func denyToken(d policy.Decision) policy.Decision {
	if d.Outcome == policy.Deny {
		return d
	}
	d.Rules = slices.Clone(d.Rules)
	for i := range d.Rules {
		if d.Rules[i].ID == policy.TokenRuleID && d.Rules[i].Mode == policy.ModeEnforce {
			d.Rules[i].Action = string(policy.Deny)
		}
	}
	d.Outcome = policy.Deny
	return d
}

// Events returns the recent decision events with Seq > after (an in-memory
// ring of the last 1000 decisions of this process, oldest first).
func (a *Agent) Events(after uint64, limit int) []event.Event { return a.recent.after(after, limit) }
