package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/wire"
)

// Case states. The legal moves between them are hq/cases' business; the
// store only moves a case from the state its caller saw, atomically.
const (
	CaseOpen           = "open"
	CaseConfirmedFraud = "confirmed_fraud"
	CaseFalsePositive  = "false_positive"
	CaseClosed         = "closed"
)

// Labels of the ground truth a verdict gives (GET /v1/cases/labels).
const (
	LabelFraud = "fraud"
	LabelLegit = "legit"
)

// verdict is the label a move to state gives, "" for none.
func verdict(state string) string {
	switch state {
	case CaseConfirmedFraud:
		return LabelFraud
	case CaseFalsePositive:
		return LabelLegit
	}
	return ""
}

var (
	// ErrCaseNotFound: no case with that id.
	ErrCaseNotFound = errors.New("no such case")
	// ErrCaseConflict: the case is no longer in the state the caller saw
	// (another analyst moved it first).
	ErrCaseConflict = errors.New("case changed meanwhile")
)

// CaseConflictError says what state a case was in when a move from another
// state was refused; it is ErrCaseConflict.
type CaseConflictError struct {
	ID, Want, Current string
}

func (e *CaseConflictError) Error() string {
	return fmt.Sprintf("case %s is %s, not %s: someone changed it meanwhile", e.ID, e.Current, e.Want)
}

func (e *CaseConflictError) Is(target error) bool { return target == ErrCaseConflict }

// Case is one case as listed: who it is about and where it stands.
type Case struct {
	ID      string   `json:"id"`
	Account string   `json:"account,omitempty"` // "" for a store incident
	Stores  []string `json:"stores"`            // the stores of its alerts, first one first
	State   string   `json:"state"`
	// Label is the verdict's label once confirmed or found false
	// (kept when the case is closed).
	Label   string    `json:"label,omitempty"`
	Alerts  int       `json:"alerts"`
	Opened  time.Time `json:"opened"`
	Updated time.Time `json:"updated"`
}

// CaseDetail is a case with its alerts and its history.
type CaseDetail struct {
	Case
	AlertEvents []event.Event `json:"alertEvents"`
	History     []CaseChange  `json:"history"`
}

// CaseChange is one move of a case, with who made it and why.
type CaseChange struct {
	From string    `json:"from,omitempty"` // "" when the case was opened
	To   string    `json:"to"`
	By   string    `json:"by"`
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

// NewCase opens a case, or finds the open one of the same subject.
type NewCase struct {
	Account string // "" for a store incident
	Store   string // required for a store incident
	Alert   *event.Event
	Opened  CaseChange // who opened it and why; To is CaseOpen
}

// subject is what at most one open case may be about at a time: the
// account, or the store for a store incident.
func (n NewCase) subject() string {
	if n.Account != "" {
		return "account:" + n.Account
	}
	return "store:" + n.Store
}

// CaseQuery selects cases, oldest first. Zero fields do not filter.
type CaseQuery struct {
	State   string
	Store   string
	Account string
	After   string // continue a listing after this case id
	Limit   int    // 0: DefaultCaseLimit
}

// DefaultCaseLimit and MaxCaseLimit bound a page of cases.
const (
	DefaultCaseLimit = 100
	MaxCaseLimit     = 1000
)

func (q CaseQuery) limit() int {
	if q.Limit <= 0 {
		return DefaultCaseLimit
	}
	return min(q.Limit, MaxCaseLimit)
}

func (q CaseQuery) match(c *Case) bool {
	if q.State != "" && c.State != q.State || q.Account != "" && c.Account != q.Account {
		return false
	}
	if q.Store == "" {
		return true
	}
	for _, s := range c.Stores {
		if s == q.Store {
			return true
		}
	}
	return false
}

// Label is one labelled account: the latest verdict of its cases.
type Label struct {
	Account string    `json:"account"`
	Label   string    `json:"label"` // LabelFraud | LabelLegit
	Case    string    `json:"case"`
	At      time.Time `json:"at"`
}

// CaseStore keeps cases. Implementations make every move atomic, so two
// HQ instances sharing a database never both win a race.
type CaseStore interface {
	// OpenOrExtendCase adds n.Alert to the open case of n's subject,
	// opening one (recorded with n.Opened) when there is none. An alert
	// already attached to a case returns that case and changes nothing.
	OpenOrExtendCase(ctx context.Context, n NewCase) (id string, opened bool, err error)
	// Case returns a case with its alerts and history.
	Case(ctx context.Context, id string) (CaseDetail, error)
	// Cases lists the cases matching q by id.
	Cases(ctx context.Context, q CaseQuery) ([]Case, error)
	// MoveCase moves a case from state ch.From to ch.To and records ch,
	// or fails with a *CaseConflictError if the case is not in ch.From.
	MoveCase(ctx context.Context, id string, ch CaseChange) (Case, error)
	// Labels lists each account's latest verdict, by account.
	Labels(ctx context.Context) ([]Label, error)
	// CaseCounts counts the cases in each state (states without cases
	// are absent).
	CaseCounts(ctx context.Context) (map[string]int, error)
}

// AllowlistStore keeps the allowlist, with a version (epoch, seq) of its
// own, made like the denylist's.
type AllowlistStore interface {
	// AllowlistChange applies c (every added account with its detail)
	// and returns the list's new version. As with the denylist, the
	// change, its number and its record (an event.AllowlistChanged event
	// naming who and why) are one atomic step.
	AllowlistChange(ctx context.Context, c ListChange) (wire.ListVersion, error)
	// Allowlist returns the list, each account's detail and the version.
	Allowlist(ctx context.Context) (wire.ListVersion, []string, map[string]wire.ListDetail, error)
}
