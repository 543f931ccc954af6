package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/token"
)

// Scan kinds, as counted in metrics.
const (
	kindItem    = "item"
	kindPayment = "payment"
	kindVoid    = "void"
	kindOther   = "other"
)

// cart is the open session: one customer's items so far, in scan order.
// It is bounded like POST /v1/decide's lines, so a scanner that keeps
// sending cannot grow it without end; past the bounds the cart is refused
// at payment (overfull says why) rather than decided on a truncated list.
type cart struct {
	lines    []CartLine
	overfull string
}

func (c *cart) add(jan string) {
	for i := range c.lines {
		if c.lines[i].JAN == jan {
			// One past the bound is enough for the policy to refuse
			// the line; counting on would only risk wrapping.
			if c.lines[i].Quantity <= policy.MaxLineQuantity {
				c.lines[i].Quantity++
			}
			return
		}
	}
	if len(c.lines) >= policy.MaxLines {
		c.overfull = fmt.Sprintf("the cart has more than %d different items", policy.MaxLines)
		return
	}
	c.lines = append(c.lines, CartLine{JAN: jan, Quantity: 1})
}

func (c *cart) reset() { c.lines, c.overfull = nil, "" }

// classify tells what a scan is for the session.
func (a *Agent) classify(sc scan.Scan) string {
	if v := a.live.Load().Session.VoidBarcode; v != "" && string(sc.Data) == v {
		return kindVoid
	}
	switch sc.Symbology {
	case scan.EAN13, scan.EAN8, scan.UPCA, scan.ITF14, scan.GS1128:
		return kindItem
	case scan.QR:
		return kindPayment
	}
	if token.Classify(sc.Data) != token.KindUnknown {
		return kindPayment
	}
	// An opaque wallet code arriving as, say, Code 128 is still a payment.
	if tok, _ := a.pol.Load().verifier.Verify(sc.Data, a.now(), nil); tok.Kind == token.KindOpaque {
		return kindPayment
	}
	return kindOther
}

// session is the one goroutine that owns the cart. Item and other scans go
// to the POS at once; a payment token ends the session with a decision.
// It returns when scans is closed, after finishing the scan in hand.
func (a *Agent) session(scans <-chan scan.Scan) {
	var c cart
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		select {
		case sc, ok := <-scans:
			if !ok {
				idle.Stop()
				return
			}
			a.handleScan(&c, sc)
			idle.Stop()
			if len(c.lines) > 0 {
				idle.Reset(a.live.Load().Session.IdleTimeout)
			}
		case <-idle.C:
			a.log.Info("session idle; cart cleared", "lines", len(c.lines))
			c.reset()
		}
	}
}

func (a *Agent) handleScan(c *cart, sc scan.Scan) {
	kind := a.classify(sc)
	a.m.scans.WithLabelValues(kind).Inc()
	switch kind {
	case kindVoid:
		a.log.Info("void barcode; cart cleared", "lines", len(c.lines))
		c.reset()
		a.forward(sc)
	case kindItem:
		c.add(string(sc.Data))
		a.forward(sc)
	case kindOther:
		a.forward(sc)
	case kindPayment:
		a.payment(c, sc)
	}
}

// forward writes a scan to the POS, if there is one.
func (a *Agent) forward(sc scan.Scan) bool {
	if a.pos == nil {
		return false
	}
	if err := a.pos.Send(sc); err != nil {
		a.m.posErrors.Inc()
		a.log.Error("scan not delivered to the POS", "err", err)
		return false
	}
	return true
}

// payment decides a token from the scanner and acts on the durable
// decision: allow forwards it and beeps good, deny beeps deny, review
// holds it. The session ends either way.
func (a *Agent) payment(c *cart, sc scan.Scan) {
	lines, overfull := c.lines, c.overfull
	c.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := a.decide(ctx, Sale{Lines: lines, Token: sc.Data, Refuse: overfull}, originScanner)
	outcome := res.Outcome
	if err != nil {
		outcome = policy.Deny
	}
	switch outcome {
	case policy.Allow:
		a.forward(sc)
		a.feedback(ctx, "good")
	case policy.Review:
		a.feedback(ctx, "review")
	default:
		a.feedback(ctx, "deny")
	}
}

// feedback beeps the scanner: good, review or deny.
func (a *Agent) feedback(ctx context.Context, what string) {
	if a.scn == nil {
		return
	}
	f := a.scn.Deny
	switch what {
	case "good":
		f = a.scn.Good
	case "review":
		f = a.scn.Review
	}
	if err := f(ctx); err != nil {
		a.log.Warn("scanner feedback not given", "feedback", what, "err", err)
	}
}
