// Package board is the display's picture of one store: a tile per register
// and the recent alerts with their review state. It is pure state: no I/O and
// no clock reads, every "now" comes in as an argument, so it is tested
// without waiting.
package board

import (
	"sort"
	"sync"
	"time"
)

// Review states. A deny alert has no review state.
const (
	Open     = "open"     // waiting for a manager
	Sent     = "sent"     // the display sent a resolution; waiting for the register
	Approved = "approved" // the register reports it forwarded the payment
	Rejected = "rejected" // the register reports it dropped the payment
	TimedOut = "timeout"  // the deadline passed (or the register said so)
)

// Chain is the outcome of an alert HQ's chain rules raised about the store
// (one account across stores ...): nothing to resolve, like a deny.
const Chain = "chain"

// Alert is one deny or review as the page shows it.
type Alert struct {
	ID       string    `json:"id"`
	ReviewID string    `json:"reviewId,omitempty"`
	Register string    `json:"register"`
	At       time.Time `json:"at"`
	SaleID   string    `json:"saleId,omitempty"`
	Outcome  string    `json:"outcome"` // deny | review | chain
	Rules    []Rule    `json:"rules"`
	Cart     []Line    `json:"cart"`
	Amount   int64     `json:"amount"`  // yen, the whole sale
	Account  string    `json:"account"` // already masked
	// Score and ShadowScore are the decision's, under a policy with
	// scores; 0 otherwise.
	Score       int       `json:"score,omitempty"`
	ShadowScore int       `json:"shadowScore,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`

	State      string    `json:"state,omitempty"`
	SentAt     time.Time `json:"sentAt,omitzero"`
	ResolvedBy string    `json:"resolvedBy,omitempty"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	Detail     string    `json:"detail,omitempty"`
}

// Rule is one fired rule with its sentence: Reason as the register wrote
// it (English), Text rendered from its reason codes in each language the
// page can switch to.
type Rule struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
	Text   Text   `json:"text"`
	Score  int    `json:"score,omitempty"`
}

// Text is one thing said in each of the page's languages.
type Text struct {
	JA string `json:"ja"`
	EN string `json:"en"`
}

// Line is the cart summed per category, with the category's names where
// the decision carried them (the id otherwise).
type Line struct {
	Category string `json:"category"`
	Names    Text   `json:"names"`
	Quantity int    `json:"quantity"`
	Amount   int64  `json:"amount"`
}

// Tile is one register's status.
type Tile struct {
	Register      string `json:"register"`
	Online        bool   `json:"online"`
	PolicyName    string `json:"policyName,omitempty"`
	PolicyVersion int64  `json:"policyVersion,omitempty"`
	// PolicyIssuedAt is when the policy in force was issued (its
	// metadata.issuedAt); zero when the register does not say.
	PolicyIssuedAt time.Time `json:"policyIssuedAt,omitzero"`
	Scanner        string    `json:"scanner,omitempty"`
	POS            string    `json:"pos,omitempty"`
	LastDecision   string    `json:"lastDecision,omitempty"`
	Refusal        string    `json:"refusal,omitempty"`
	// PeersUnreachable: the register is up but does not share facts with
	// the store's other registers (a token spent there is not known here).
	PeersUnreachable bool      `json:"peersUnreachable,omitempty"`
	At               time.Time `json:"at,omitzero"`
}

// Resolution is the register's report that a review ended.
type Resolution struct {
	Register string
	ReviewID string
	Action   string // approve | reject | timeout
	By       string
	At       time.Time
	Detail   string
}

// Snapshot is the whole board at one moment, what a page gets on connect.
type Snapshot struct {
	Store     string  `json:"store"`
	Registers []Tile  `json:"registers"`
	Alerts    []Alert `json:"alerts"` // newest first; open reviews are included wherever they fall
}

// DefaultKeep is how many finished alerts the board remembers.
const DefaultKeep = 200

// Board is safe for concurrent use.
type Board struct {
	mu     sync.Mutex
	store  string
	keep   int
	tiles  map[string]Tile
	alerts []Alert // oldest first
	byID   map[string]int
}

// New makes an empty board for a store. keep bounds the finished alerts kept
// (open reviews are never dropped); keep <= 0 means DefaultKeep.
func New(store string, keep int) *Board {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Board{store: store, keep: keep, tiles: map[string]Tile{}, byID: map[string]int{}}
}

// Status records a register's status and returns the tile to broadcast.
// A status older than the one held is ignored (changed false): retained
// messages and reconnects can deliver an old one after a newer one.
func (b *Board) Status(t Tile) (Tile, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.tiles[t.Register]; ok && !t.At.IsZero() && t.At.Before(old.At) {
		return old, false
	}
	b.tiles[t.Register] = t
	return t, true
}

// Alert adds an alert. A repeated id (MQTT QoS 1 may deliver twice) is
// ignored. A review starts open, or timed out if its deadline already passed
// at now.
func (b *Board) Alert(a Alert, now time.Time) (Alert, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i, ok := b.byID[a.ID]; ok {
		return b.alerts[i], false
	}
	if a.Outcome == "review" && a.State == "" {
		a.State = Open
		if !a.Deadline.IsZero() && !now.Before(a.Deadline) {
			a.State = TimedOut
			a.ResolvedAt = a.Deadline
		}
	}
	b.alerts = append(b.alerts, a)
	b.byID[a.ID] = len(b.alerts) - 1
	b.trim()
	return a, true
}

// Resolve ends a review with the register's report. It returns the updated
// alert, or false when no such review is held or it already ended the same
// way.
func (b *Board) Resolve(r Resolution) (Alert, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.reviewIndex(r.Register, r.ReviewID)
	if !ok {
		return Alert{}, false
	}
	a := &b.alerts[i]
	state := TimedOut
	switch r.Action {
	case "approve":
		state = Approved
	case "reject":
		state = Rejected
	}
	if a.State == state {
		return *a, false
	}
	a.State, a.ResolvedBy, a.ResolvedAt, a.Detail = state, r.By, r.At, r.Detail
	b.trim()
	return b.alerts[b.byID[a.ID]], true
}

// MarkSent records that a resolution went out at now for an open review so
// the page shows it is waiting for the register. It reports whether the
// review exists and is still open (or already sent: resending is fine).
func (b *Board) MarkSent(register, reviewID string, now time.Time) (Alert, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, found, pending := b.pending(register, reviewID)
	if !pending {
		return a.value(found), false
	}
	a.State, a.SentAt, a.Detail = Sent, now, ""
	return *a, true
}

// pending finds a review and reports whether it is still open or sent;
// callers hold mu.
func (b *Board) pending(register, reviewID string) (a *Alert, found, pending bool) {
	i, ok := b.reviewIndex(register, reviewID)
	if !ok {
		return nil, false, false
	}
	a = &b.alerts[i]
	return a, true, a.State == Open || a.State == Sent
}

// value is the alert, or the zero Alert for one not found.
func (a *Alert) value(found bool) Alert {
	if !found {
		return Alert{}
	}
	return *a
}

// Pending reports whether a review is open or sent, i.e. may be resolved.
func (b *Board) Pending(register, reviewID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _, pending := b.pending(register, reviewID)
	return pending
}

// NoAnswer is the Detail of a review put back to open because the register
// did not answer a resolution in time (lost on the way, or a register too
// old to report a refusal).
const NoAnswer = "noAnswer"

// Details of a review put back to open because the register refused the
// resolution (see Refuse).
const (
	BadPIN      = "badPIN"      // wrong manager PIN
	RateLimited = "rateLimited" // too many wrong PINs; wait and retry
	NoPINs      = "noPINs"      // the register has no manager PINs
	// The register holds no such review, or it ended otherwise there (a
	// resolution the display missed): retrying cannot help, the review
	// stays until its deadline.
	UnknownReview = "unknownReview"
	AlreadyEnded  = "alreadyEnded"
	PINGuessing   = "pinGuessing" // too many wrong PINs: someone may be guessing
	Refused       = "refused"     // any other reason
)

// Refuse records the register's report that it refused a resolution of a
// review still open or sent: the review is open again, so the manager can
// retry, with detail saying why. It returns the updated alert, or false when
// no such review is pending.
func (b *Board) Refuse(register, reviewID, detail string) (Alert, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, found, pending := b.pending(register, reviewID)
	if !pending {
		return a.value(found), false
	}
	a.State, a.Detail = Open, detail
	return *a, true
}

// Expire times out the reviews whose deadline passed at now, and puts back
// to open the sent ones the register has not answered within answerWait, so
// the manager can try again. It returns the changed alerts.
func (b *Board) Expire(now time.Time, answerWait time.Duration) []Alert {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Alert
	for i := range b.alerts {
		a := &b.alerts[i]
		switch {
		case (a.State == Open || a.State == Sent) && !a.Deadline.IsZero() && !now.Before(a.Deadline):
			a.State, a.ResolvedAt = TimedOut, a.Deadline
		case a.State == Sent && answerWait > 0 && !now.Before(a.SentAt.Add(answerWait)):
			a.State, a.Detail = Open, NoAnswer
		default:
			continue
		}
		out = append(out, *a)
	}
	if out != nil {
		b.trim()
	}
	return out
}

// Alerts copies the alerts, oldest first: what a restart needs to Restore.
func (b *Board) Alerts() []Alert {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Alert(nil), b.alerts...)
}

// Restore adds alerts saved before a restart, oldest first, keeping their
// review state; ids already on the board are skipped. A review whose
// deadline passed meanwhile is timed out by the next Expire. It returns how
// many were added.
func (b *Board) Restore(alerts []Alert, now time.Time) int {
	n := 0
	for _, a := range alerts {
		if _, added := b.Alert(a, now); added {
			n++
		}
	}
	return n
}

// Snapshot copies the board: registers sorted by id, alerts newest first.
func (b *Board) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Snapshot{Store: b.store, Registers: make([]Tile, 0, len(b.tiles)), Alerts: make([]Alert, 0, len(b.alerts))}
	for _, t := range b.tiles {
		s.Registers = append(s.Registers, t)
	}
	sort.Slice(s.Registers, func(i, j int) bool { return s.Registers[i].Register < s.Registers[j].Register })
	for i := len(b.alerts) - 1; i >= 0; i-- {
		s.Alerts = append(s.Alerts, b.alerts[i])
	}
	sort.SliceStable(s.Alerts, func(i, j int) bool { return s.Alerts[i].At.After(s.Alerts[j].At) })
	return s
}

func (b *Board) reviewIndex(register, reviewID string) (int, bool) {
	if reviewID == "" {
		return 0, false
	}
	for i := len(b.alerts) - 1; i >= 0; i-- {
		a := b.alerts[i]
		if a.Outcome == "review" && a.ReviewID == reviewID && a.Register == register {
			return i, true
		}
	}
	return 0, false
}

// trim drops the oldest finished alerts beyond keep; open reviews stay
// pinned however old they are. Must hold mu.
func (b *Board) trim() {
	finished := 0
	for _, a := range b.alerts {
		if a.State != Open && a.State != Sent {
			finished++
		}
	}
	// Trim in batches (a quarter of keep over the bound) so a busy store
	// does not rebuild the index on every alert.
	if finished <= b.keep+b.keep/4 {
		return
	}
	drop := finished - b.keep
	kept := b.alerts[:0]
	for _, a := range b.alerts {
		if drop > 0 && a.State != Open && a.State != Sent {
			drop--
			continue
		}
		kept = append(kept, a)
	}
	// Clear the tail so dropped alerts' slices can be collected.
	for i := len(kept); i < len(b.alerts); i++ {
		b.alerts[i] = Alert{}
	}
	b.alerts = kept
	b.byID = make(map[string]int, len(kept))
	for i, a := range b.alerts {
		b.byID[a.ID] = i
	}
}
