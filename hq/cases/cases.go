// Package cases is HQ's case work: a case groups the alerts of one account
// (or one store incident) for the fraud team, and moves open →
// confirmed_fraud | false_positive → closed, every move recorded with who
// made it (the authenticated API caller) and why. A confirmed case puts the
// account on the denylist everywhere; a false positive puts it on the
// allowlist until an expiry, so rules marked `unless: allowlisted` leave a
// legitimate bulk buyer alone. The verdicts are the labels backtests
// measure a policy against.
package cases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/wire"
)

// Lists is what a verdict changes: HQ's signed lists (hq.Service).
type Lists interface {
	DenylistChange(ctx context.Context, c store.ListChange) (uint64, error)
	AllowlistChange(ctx context.Context, c store.ListChange) (uint64, error)
	// Signing reports whether HQ can publish list changes at all; a
	// verdict that needs one is refused before the case moves.
	Signing() bool
}

// Allow entry durations: the default, and the longest a request may ask.
const (
	DefaultAllowFor = 30 * 24 * time.Hour
	MaxAllowFor     = 365 * 24 * time.Hour
)

// MaxNoteLen bounds the note recorded with a move.
const MaxNoteLen = 500

var (
	// ErrIllegal: the move is not one the state machine allows from the
	// case's state.
	ErrIllegal = errors.New("move not allowed")
	// ErrBadRequest: a note, account, store or expiry that cannot be used.
	ErrBadRequest = errors.New("bad request")
	// ErrNoSigner: the verdict needs a list change HQ cannot sign.
	ErrNoSigner = errors.New("HQ has no list signing key (--denylist-key): a verdict that changes a list cannot be given")
)

// moves is the state machine: from each state, where a case may go.
// A case may be closed without a verdict (a duplicate, an incident with
// nothing to decide); a verdict is final, so a case found false is never
// confirmed later: a new alert opens a new case.
var moves = map[string][]string{
	store.CaseOpen:           {store.CaseConfirmedFraud, store.CaseFalsePositive, store.CaseClosed},
	store.CaseConfirmedFraud: {store.CaseClosed},
	store.CaseFalsePositive:  {store.CaseClosed},
	store.CaseClosed:         nil,
}

// CanMove reports whether a case in state from may move to state to.
func CanMove(from, to string) bool {
	for _, s := range moves[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Service runs the cases on a store.
type Service struct {
	st    store.CaseStore
	lists Lists
	now   func() time.Time
	// moved, when set, hears of every case this service opened (from "")
	// or moved: HQ counts them for its metrics.
	moved func(from, to string)
}

// OnMove has f called after each case this service opens (from "") or
// moves. Set it before the service is used.
func (s *Service) OnMove(f func(from, to string)) { s.moved = f }

func (s *Service) tell(from, to string) {
	if s.moved != nil {
		s.moved(from, to)
	}
}

// New returns the case service of st, changing lists on verdicts.
func New(st store.CaseStore, lists Lists, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, lists: lists, now: now}
}

// OpenOrExtend opens a case for the account (or, with account "", for the
// store) or adds the alert to the open one, and returns the case id. The
// same alert twice is attached once. It is what HQ's chain rules call.
func (s *Service) OpenOrExtend(ctx context.Context, account, storeID string, alert event.Event) (string, error) {
	if err := checkSubject(account, storeID); err != nil {
		return "", err
	}
	if err := alert.Validate(); err != nil {
		return "", fmt.Errorf("%w: alert: %w", ErrBadRequest, err)
	}
	note := "alert " + alert.ID
	if alert.Detail != "" {
		note += ": " + alert.Detail
	}
	id, opened, err := s.st.OpenOrExtendCase(ctx, store.NewCase{Account: account, Store: storeID, Alert: &alert,
		Opened: store.CaseChange{To: store.CaseOpen, By: "hq", Note: clip(note, MaxNoteLen), At: s.now().UTC()}})
	if err == nil && opened {
		s.tell("", store.CaseOpen)
	}
	return id, err
}

// Open opens a case by hand (or returns the subject's open case).
func (s *Service) Open(ctx context.Context, account, storeID, by, note string) (string, bool, error) {
	if err := checkSubject(account, storeID); err != nil {
		return "", false, err
	}
	if err := checkNote(by, note); err != nil {
		return "", false, err
	}
	id, opened, err := s.st.OpenOrExtendCase(ctx, store.NewCase{Account: account, Store: storeID,
		Opened: store.CaseChange{To: store.CaseOpen, By: by, Note: note, At: s.now().UTC()}})
	if err == nil && opened {
		s.tell("", store.CaseOpen)
	}
	return id, opened, err
}

// Case returns a case with its alerts and history.
func (s *Service) Case(ctx context.Context, id string) (store.CaseDetail, error) {
	return s.st.Case(ctx, id)
}

// Cases lists cases.
func (s *Service) Cases(ctx context.Context, q store.CaseQuery) ([]store.Case, error) {
	return s.st.Cases(ctx, q)
}

// Labels lists each account's latest verdict.
func (s *Service) Labels(ctx context.Context) ([]store.Label, error) { return s.st.Labels(ctx) }

// Outcome is a move made, and the list change it caused (0: none). A
// Warning says the list change was stored but not (fully) published:
// registers heal from the snapshot.
type Outcome struct {
	Case    store.Case `json:"case"`
	ListSeq uint64     `json:"listSeq,omitempty"`
	List    string     `json:"list,omitempty"` // denylist | allowlist
	Warning string     `json:"warning,omitempty"`
}

// Confirm records the case as fraud and denylists its account everywhere
// (By: the caller, Reason: the note, rule "case:<id>").
func (s *Service) Confirm(ctx context.Context, id, by, note string) (Outcome, error) {
	d, err := s.move(ctx, id, store.CaseConfirmedFraud, by, note)
	if err != nil || d.Account == "" {
		return Outcome{Case: d.Case}, err
	}
	detail := wire.ListDetail{Rule: "case:" + id, Reason: clip(note, wire.MaxTextLen), Events: alertIDs(d)}
	seq, err := s.lists.DenylistChange(ctx, store.ListChange{Add: []string{d.Account}, By: by, Reason: note,
		Details: map[string]wire.ListDetail{d.Account: detail}})
	return listOutcome(d.Case, wire.SubjectDenylist, seq, err)
}

// FalsePositive records the case as legitimate and allowlists its account
// until expires (zero: DefaultAllowFor from now); atStore, when given, is
// where the account was found legitimate, for the entry's reason.
func (s *Service) FalsePositive(ctx context.Context, id, by, note string, expires time.Time, atStore string) (Outcome, error) {
	now := s.now()
	if expires.IsZero() {
		expires = now.Add(DefaultAllowFor)
	}
	if !expires.After(now) || expires.Sub(now) > MaxAllowFor {
		return Outcome{}, fmt.Errorf("%w: expires %s is not in the next %s", ErrBadRequest, expires.Format(time.RFC3339), MaxAllowFor)
	}
	if atStore != "" {
		if err := wire.ValidateStore(atStore); err != nil {
			return Outcome{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	d, err := s.move(ctx, id, store.CaseFalsePositive, by, note)
	if err != nil || d.Account == "" {
		return Outcome{Case: d.Case}, err
	}
	reason := note
	if atStore != "" {
		reason = "at store " + atStore + ": " + note
	}
	detail := wire.ListDetail{ExpiresAt: expires.UTC(), Rule: "case:" + id, Reason: clip(reason, wire.MaxTextLen), Events: alertIDs(d)}
	seq, err := s.lists.AllowlistChange(ctx, store.ListChange{Add: []string{d.Account}, By: by, Reason: note,
		Details: map[string]wire.ListDetail{d.Account: detail}})
	return listOutcome(d.Case, wire.SubjectAllowlist, seq, err)
}

// Close closes a case; its verdict, if any, stays its label.
func (s *Service) Close(ctx context.Context, id, by, note string) (Outcome, error) {
	d, err := s.move(ctx, id, store.CaseClosed, by, note)
	return Outcome{Case: d.Case}, err
}

// move moves the case from the state it is in now to to, if the state
// machine allows it; the store's compare-and-set makes a concurrent move
// fail with store.ErrCaseConflict rather than both happen.
func (s *Service) move(ctx context.Context, id, to, by, note string) (store.CaseDetail, error) {
	if err := checkNote(by, note); err != nil {
		return store.CaseDetail{}, err
	}
	d, err := s.st.Case(ctx, id)
	if err != nil {
		return store.CaseDetail{}, err
	}
	if !CanMove(d.State, to) {
		return d, fmt.Errorf("%w: case %s is %s; it cannot become %s", ErrIllegal, id, d.State, to)
	}
	if d.Account != "" && to != store.CaseClosed && !s.lists.Signing() {
		return d, ErrNoSigner
	}
	c, err := s.st.MoveCase(ctx, id, store.CaseChange{From: d.State, To: to, By: by, Note: note, At: s.now().UTC()})
	if err != nil {
		return d, err
	}
	s.tell(d.State, to)
	d.Case = c
	return d, nil
}

// listOutcome reports a verdict's list change. The case has moved either
// way: a change that was not even stored is an error saying so, for the
// analyst to make by hand.
func listOutcome(c store.Case, list string, seq uint64, err error) (Outcome, error) {
	o := Outcome{Case: c, List: list, ListSeq: seq}
	switch {
	case err != nil && seq == 0:
		return o, fmt.Errorf("case %s is now %s, but the %s change failed (make it by hand): %w", c.ID, c.State, list, err)
	case err != nil:
		o.Warning = err.Error()
	}
	return o, nil
}

func alertIDs(d store.CaseDetail) []string {
	var ids []string
	for _, ev := range d.AlertEvents {
		if len(ids) == wire.MaxDetailEvents {
			break
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

func checkSubject(account, storeID string) error {
	if account != "" {
		if err := wire.CheckAccount(account); err != nil {
			return fmt.Errorf("%w: account: %w", ErrBadRequest, err)
		}
	}
	if storeID == "" {
		if account == "" {
			return fmt.Errorf("%w: a case needs an account or a store", ErrBadRequest)
		}
		return nil
	}
	if err := wire.ValidateStore(storeID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

func checkNote(by, note string) error {
	switch {
	case by == "":
		return fmt.Errorf("%w: who makes the change is required", ErrBadRequest)
	case strings.TrimSpace(note) == "":
		return fmt.Errorf("%w: note: required (why)", ErrBadRequest)
	case len(note) > MaxNoteLen:
		return fmt.Errorf("%w: note: longer than %d bytes", ErrBadRequest, MaxNoteLen)
	case !utf8.ValidString(note) || strings.ContainsFunc(note, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: note: control characters or invalid UTF-8", ErrBadRequest)
	}
	return nil
}

// Clip cuts s to at most n bytes at a rune boundary, for a note or reason
// that goes into a list entry's detail.
func Clip(s string, n int) string { return clip(s, n) }

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Service is the CaseOpener HQ's chain rules call (hq/chain, which this
// package does not import).
var _ interface {
	OpenOrExtend(ctx context.Context, account, store string, alert event.Event) (string, error)
} = (*Service)(nil)
