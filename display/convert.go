package display

import (
	"sort"
	"time"
	"unicode/utf8"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// maskAccount shows enough of an account key for staff to tell two accounts
// apart on screen and no more: the first four characters (fewer for short
// keys, never more than half) and an ellipsis.
func maskAccount(acct string) string {
	n := utf8.RuneCountInString(acct)
	if n == 0 {
		return ""
	}
	show := min(4, n/2)
	i := 0
	for k := range acct {
		if i == show {
			return acct[:k] + "…"
		}
		i++
	}
	return "…"
}

// alertFrom turns an alert event into what the page shows. The event carries
// no review id or deadline: the register holds a review under the sale id,
// and the deadline is the event time plus the review timeout the display is
// configured with (the same as the registers').
func alertFrom(ev event.Event, reviewTimeout time.Duration) board.Alert {
	a := board.Alert{
		ID:       ev.ID,
		Register: ev.Register,
		At:       ev.At,
		SaleID:   ev.SaleID,
		Outcome:  string(ev.Decision.Outcome),
		Rules:    make([]board.Rule, 0, len(ev.Decision.Rules)),
		Account:  maskAccount(ev.Request.Payment.Account),
	}
	for _, r := range ev.Decision.Rules {
		a.Rules = append(a.Rules, board.Rule{ID: r.ID, Action: r.Action, Mode: r.Mode, Reason: r.Reason})
	}
	byCat := map[string]*board.Line{}
	for _, l := range ev.Request.Lines {
		c := byCat[l.Category]
		if c == nil {
			c = &board.Line{Category: l.Category}
			byCat[l.Category] = c
		}
		c.Quantity += l.Quantity
		amt := int64(l.Quantity) * l.UnitPrice
		c.Amount += amt
		a.Amount += amt
	}
	a.Cart = make([]board.Line, 0, len(byCat))
	for _, c := range byCat {
		a.Cart = append(a.Cart, *c)
	}
	// Biggest amount first: the tobacco cartons are what staff must see.
	sort.Slice(a.Cart, func(i, j int) bool {
		if a.Cart[i].Amount != a.Cart[j].Amount {
			return a.Cart[i].Amount > a.Cart[j].Amount
		}
		return a.Cart[i].Category < a.Cart[j].Category
	})
	if a.Outcome == "review" {
		a.ReviewID = ev.SaleID
		if reviewTimeout > 0 {
			a.Deadline = ev.At.Add(reviewTimeout)
		}
	}
	return a
}

// resolutionFrom turns a resolution event into the board's form.
func resolutionFrom(ev event.Event) board.Resolution {
	r := ev.Resolution
	return board.Resolution{Register: ev.Register, ReviewID: r.ReviewID, Action: r.Action, By: r.By, At: r.At, Detail: ev.Detail}
}

// refusalDetails are the board's words for the register's refusal codes.
var refusalDetails = map[event.Code]string{
	event.CodeWrongPIN:        board.BadPIN,
	event.CodeRateLimited:     board.RateLimited,
	event.CodeNoPINs:          board.NoPINs,
	event.CodeUnknownReview:   board.UnknownReview,
	event.CodeAlreadyResolved: board.AlreadyEnded,
	event.CodePINGuessing:     board.PINGuessing,
}

// refusalDetail says in the board's words why the register refused a
// resolution, from the event's code: a refusal without one (a register
// built before codes) is a plain refusal.
func refusalDetail(ev event.Event) string {
	if d, ok := refusalDetails[ev.Code]; ok {
		return d
	}
	return board.Refused
}

// tileFrom turns a register status into its tile.
func tileFrom(s wire.Status) board.Tile {
	t := board.Tile{
		Register: s.Register,
		Online:   s.Online,
		Scanner:  string(s.Links.Scanner),
		POS:      string(s.Links.POS),
		At:       s.At,
	}
	if s.Policy != nil {
		t.PolicyName, t.PolicyVersion, t.PolicyIssuedAt = s.Policy.Name, s.Policy.Version, s.Policy.IssuedAt
	}
	if s.LastDecision != nil {
		t.LastDecision = s.LastDecision.Outcome
	}
	if s.Refusal != nil {
		t.Refusal = s.Refusal.Subject + ": " + s.Refusal.Reason
	}
	// A register that predates store facts says nothing about peers: only
	// an explicit false is shown.
	t.PeersUnreachable = s.Online && s.Peers != nil && !s.Peers.Reachable
	return t
}
