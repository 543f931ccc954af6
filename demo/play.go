package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/policy/token"
	"github.com/posguard/posguard/wire"
)

// play runs the scenario, one customer at a time, and tallies.
func (r *rig) play(ctx context.Context) (Summary, error) {
	var sum Summary
	minted := map[string]string{}
	decided := map[string]event.Event{}
	clock := time.Duration(0)
	fmt.Fprintf(r.o.Out, "%-6s %-6s %-62s %10s  %s\n", "time", "till", "customer", "amount", "decision")
	for i, st := range scenario() {
		clock += st.after
		if err := r.pause(ctx, st.after); err != nil {
			return sum, err
		}
		if st.denylist != nil {
			seq, err := r.hq.DenylistChange(ctx, store.ListChange{Add: st.denylist, By: "demo (HQ fraud desk)", Reason: st.note})
			if err != nil {
				return sum, fmt.Errorf("denylist: %w", err)
			}
			fmt.Fprintf(r.o.Out, "%-6s %-6s %s (denylist seq %d)\n", stamp(clock), "HQ", st.note, seq)
			if err := r.waitDenylist(ctx, seq); err != nil {
				return sum, err
			}
			continue
		}
		if st.resolve != "" {
			if err := r.resolve(ctx, st, decided[st.resolve], clock); err != nil {
				return sum, err
			}
			sum.Resolved++
			continue
		}
		text := minted[st.replayOf]
		if st.replayOf == "" {
			var err error
			if text, err = r.mint(st.pay, i); err != nil {
				return sum, err
			}
			minted[st.who] = text
		}
		till := st.till()
		ev, err := r.sale(ctx, r.regs[till], st.items, text)
		if err != nil {
			return sum, fmt.Errorf("%s at %s: %w", st.who, till, err)
		}
		decided[st.who] = ev
		if err := r.waitPeers(ctx, till, ev.At); err != nil {
			return sum, err
		}
		r.tally(&sum, st, ev)
		outcome := strings.ToUpper(string(ev.Decision.Outcome))
		if ev.Decision.Score > 0 {
			outcome += fmt.Sprintf(" (score %d)", ev.Decision.Score)
		}
		fmt.Fprintf(r.o.Out, "%-6s %-6s %-62s %10s  %s\n", stamp(clock), till, st.who,
			yen(total(ev.Request)), outcome)
		for _, why := range reasons(ev.Decision) {
			fmt.Fprintf(r.o.Out, "%14s· %s\n", "", why)
		}
		if ruleID := chainDenylisted(ev.Decision); ruleID != "" {
			if err := r.showOnDisplay(ctx, ev); err != nil {
				return sum, err
			}
		}
		if st.chain != "" {
			if err := r.waitChainDenylist(ctx, st.chain, ev, clock); err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}

// chainDenylisted names the chain rule whose denylist entry refused the
// sale, "" when none did.
func chainDenylisted(d *policy.Decision) string {
	for _, f := range d.Rules {
		for _, why := range f.Reasons {
			if why.Code == sale.CodeDenylisted && why.Text != "" && f.Mode != "shadow" {
				return why.Text
			}
		}
	}
	return ""
}

// showOnDisplay prints what the store display shows the staff for a sale
// refused by a chain rule's denylist entry: the reason in Japanese, as the
// display renders it from the register's reason codes.
func (r *rig) showOnDisplay(ctx context.Context, ev event.Event) error {
	_, a, err := r.displayAlert(ctx, ev)
	if err != nil {
		return err
	}
	for _, rl := range a.Rules {
		if rl.ID == "denylist" {
			fmt.Fprintf(r.o.Out, "%14s· display %s: %s\n", "", ev.Store, rl.Text.JA)
			return nil
		}
	}
	return fmt.Errorf("display %s shows sale %s without its denylist rule", ev.Store, ev.SaleID)
}

// waitChainDenylist waits for HQ's chain rule to denylist the account of
// the sale ev and for every register of the chain to apply the entry, then
// prints what HQ did and how long it took from the sale's decision.
func (r *rig) waitChainDenylist(ctx context.Context, rule string, ev event.Event, clock time.Duration) error {
	acct := ev.Request.Payment.Account
	var d wire.ListDetail
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		details, err := r.hqStore.DenylistDetails(ctx)
		d = details[acct]
		return d.Rule == rule, err
	})
	if err != nil {
		return fmt.Errorf("chain rule %s did not denylist the account of sale %s: %w", rule, ev.SaleID, err)
	}
	v, _, err := r.hqStore.Denylist(ctx)
	if err != nil {
		return err
	}
	if err := r.waitDenylist(ctx, v.Seq); err != nil {
		return err
	}
	fmt.Fprintf(r.o.Out, "%-6s %-6s chain rule %s: %s → denylisted for %s at all %d registers %.1f s after the sale (seq %d)\n",
		stamp(clock), "HQ", rule, d.Reason, reason.Duration(reason.English, int64(time.Until(d.ExpiresAt).Round(time.Hour)/time.Second)),
		len(r.regs), time.Since(ev.At).Seconds(), v.Seq)
	return nil
}

// displayAlert opens the display of ev's store, as a manager's browser
// does, and waits for the alert of ev's sale.
func (r *rig) displayAlert(ctx context.Context, ev event.Event) (*displayClient, board.Alert, error) {
	c, err := newDisplayClient(ctx, r.displayURLs[ev.Store])
	if err != nil {
		return nil, board.Alert{}, err
	}
	a, err := c.waitAlert(ctx, ev.SaleID, "")
	return c, a, err
}

// pollFor bounds how long the demo waits for a part to catch up.
const pollFor = 15 * time.Second

// poll calls done every interval until it reports true, fails, or
// pollFor has passed.
func poll(ctx context.Context, every time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(pollFor)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", pollFor)
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resolve does at the store display what a manager does: find the held
// sale, enter the PIN, reject (or approve) it; then waits for the register's
// answer to show on the display.
func (r *rig) resolve(ctx context.Context, st step, held event.Event, clock time.Duration) error {
	if held.Decision == nil || held.Decision.Outcome != policy.Review {
		return fmt.Errorf("scenario: %q was not held for review", st.resolve)
	}
	c, a, err := r.displayAlert(ctx, held)
	if err != nil {
		return err
	}
	reviewID := a.ReviewID
	if reviewID == "" {
		reviewID = held.SaleID
	}
	if err := c.resolve(ctx, held.Register, reviewID, st.action, demoPIN); err != nil {
		return err
	}
	want := map[string]string{"reject": "rejected", "approve": "approved"}[st.action]
	if _, err := c.waitAlert(ctx, held.SaleID, want); err != nil {
		return err
	}
	fmt.Fprintf(r.o.Out, "%-6s %-6s %-62s %10s  %s\n", stamp(clock), "disp", st.note, "", strings.ToUpper(want))
	return nil
}

// waitPeers waits until every other register has applied the facts of
// the sale decided at reg at: in a store the next customer reaches the other
// till seconds later, which is far longer than a fact takes to cross the
// store (docs/DESIGN.md, "Store facts"); at --speed 0 the next sale would
// otherwise race it.
func (r *rig) waitPeers(ctx context.Context, reg string, at time.Time) error {
	deadline := time.Now().Add(15 * time.Second)
	for id, peer := range r.regs {
		if id == reg || peer.store != r.regs[reg].store {
			continue
		}
		for {
			p := peer.agent.Status().HQ.Peers
			if p != nil && !p.LastFactAt.Before(at) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("register %s did not get the facts of %s's sale at %s", id, reg, at.Format(time.RFC3339Nano))
			}
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (r *rig) pause(ctx context.Context, d time.Duration) error {
	if r.o.Speed <= 0 || d <= 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(time.Duration(float64(d) / r.o.Speed)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case err := <-r.errs:
		return err
	}
}

// mint makes the customer's payment QR as their wallet app would.
func (r *rig) mint(w wallet, i int) (string, error) {
	if w.emvPAN != "" {
		return token.MintEMV(token.EMVSample{Label: "DEMO CARD", PAN: w.emvPAN, ATC: uint16(10 + i)})
	}
	now := r.now()
	dev := make([]byte, 8)
	rand.Read(dev)
	c := token.Claims{Issuer: walletISS, Subject: w.account, IssuedAt: now, ExpiresAt: now.Add(2 * time.Minute),
		DeviceID: dev, DeviceSince: now.Add(-w.deviceAge), AccountSince: now.Add(-w.accountAge),
		ForeignLogin: w.foreignLogin}
	if w.topUpAgo > 0 {
		c.TopUpAt, c.TopUpAmount = now.Add(-w.topUpAgo), w.topUpAmount
	}
	return token.Mint(r.wallet, "EdDSA", walletKID, c)
}

// sale scans the items and the payment QR on the register's (virtual)
// scanner and waits for the decision the register reports to HQ.
func (r *rig) sale(ctx context.Context, reg *register, items []item, qr string) (event.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, it := range items {
		for range it.qty {
			if err := reg.scanner.Scan(ctx, scan.EAN13, []byte(it.jan)); err != nil {
				return event.Event{}, err
			}
		}
	}
	if err := reg.scanner.Scan(ctx, scan.QR, []byte(qr)); err != nil {
		return event.Event{}, err
	}
	select {
	case ev := <-reg.decisions:
		return ev, nil
	case err := <-r.errs:
		return event.Event{}, err
	case <-ctx.Done():
		return event.Event{}, fmt.Errorf("no decision reported: %w", ctx.Err())
	}
}

// waitDenylist waits until every register reports the denylist sequence,
// so the next sale shows it taking effect.
func (r *rig) waitDenylist(ctx context.Context, seq uint64) error {
	n := 0
	err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		fleet, err := r.hqStore.Fleet(ctx)
		n = 0
		for _, reg := range fleet {
			if reg.Status.DenylistSeq >= seq {
				n++
			}
		}
		return n == len(r.regs), err
	})
	if err != nil {
		return fmt.Errorf("denylist seq %d reached %d of %d registers: %w", seq, n, len(r.regs), err)
	}
	return nil
}

func (r *rig) tally(s *Summary, st step, ev event.Event) {
	s.Sales++
	amt := total(ev.Request)
	stopped := ev.Decision.Outcome != policy.Allow
	switch ev.Decision.Outcome {
	case policy.Allow:
		s.Allowed++
	case policy.Review:
		s.Reviewed++
		s.YenHeld += amt
	case policy.Deny:
		s.Denied++
		s.YenDenied += amt
	}
	if st.label == "fraud" {
		s.Fraud++
		if stopped {
			s.FraudStopped++
		}
	} else {
		s.Legit++
		if stopped {
			s.LegitTouched++
		}
	}
}

func (r *rig) printSummary(ctx context.Context, s Summary) {
	fmt.Fprintf(r.o.Out, "\n%d sales: %d allowed, %d held for review, %d denied; resolved at the display: %d\n",
		s.Sales, s.Allowed, s.Reviewed, s.Denied, s.Resolved)
	fmt.Fprintf(r.o.Out, "%s refused at the till, %s held for a manager\n", yen(s.YenDenied), yen(s.YenHeld))
	fmt.Fprintf(r.o.Out, "fraudulent sales stopped: %d of %d; legitimate sales touched: %d of %d\n",
		s.FraudStopped, s.Fraud, s.LegitTouched, s.Legit)
	for _, st := range stores {
		c, err := newDisplayClient(ctx, r.displayURLs[st])
		if err != nil {
			continue
		}
		if v, err := c.board(ctx); err == nil {
			open := 0
			for _, a := range v.Alerts {
				if a.State == "open" {
					open++
				}
			}
			fmt.Fprintf(r.o.Out, "store display %s: %d registers, %d alerts, open reviews: %d\n", st, len(v.Registers), len(v.Alerts), open)
		}
	}
}

func total(req *policy.Request) int64 {
	if req == nil {
		return 0
	}
	var n int64
	for _, l := range req.Lines {
		n += int64(l.Quantity) * l.UnitPrice
	}
	return n
}

// reasons lists the enforced rules' reasons, then the shadow ones, as the
// shared templates word them in English, each with its score.
func reasons(d *policy.Decision) []string {
	var on, shadow []string
	for _, f := range d.Rules {
		s := reason.Fired(reason.English, f)
		if f.Score > 0 {
			s += fmt.Sprintf(" (+%d)", f.Score)
		}
		if f.Mode == "shadow" {
			shadow = append(shadow, "(shadow) "+s)
		} else {
			on = append(on, s)
		}
	}
	return append(on, shadow...)
}

func stamp(d time.Duration) string {
	t := time.Date(2019, 7, 3, 9, 0, 0, 0, time.UTC).Add(d)
	return t.Format("15:04")
}

func yen(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return "¥" + b.String()
}
