package display

import (
	"sort"
	"strings"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

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
		Account:  reason.MaskAccount(ev.Request.Payment.Account),
		Score:    ev.Decision.Score,

		ShadowScore: ev.Decision.ShadowScore,
	}
	for _, r := range ev.Decision.Rules {
		a.Rules = append(a.Rules, board.Rule{ID: r.ID, Action: r.Action, Mode: r.Mode, Reason: r.Reason, Score: r.Score,
			Text: board.Text{JA: reason.Fired(reason.Japanese, r), EN: reason.Fired(reason.English, r)}})
	}
	names := categoryNames(ev.Decision)
	byCat := map[string]*board.Line{}
	for _, l := range ev.Request.Lines {
		c := byCat[l.Category]
		if c == nil {
			n := names[l.Category]
			if n.ID == "" {
				n = sale.Names{ID: l.Category}
			}
			c = &board.Line{Category: l.Category, Names: board.Text{JA: reason.Category(reason.Japanese, n), EN: reason.Category(reason.English, n)}}
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

// categoryNames are the names of the sale's categories as the register
// put them in the decision (the display has no policy), and those single
// categories its reasons name, for decisions that predate the list.
func categoryNames(d *sale.Decision) map[string]sale.Names {
	out := map[string]sale.Names{"unknown": {ID: "unknown", JA: "不明な商品", EN: "unknown items"}}
	for _, f := range d.Rules {
		for _, r := range f.Reasons {
			if n := r.Category; n.ID != "" && !strings.Contains(n.ID, ",") {
				out[n.ID] = n
			}
		}
	}
	for _, n := range d.Categories {
		out[n.ID] = n
	}
	return out
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
