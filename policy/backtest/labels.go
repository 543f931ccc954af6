package backtest

import (
	"fmt"
	"io"
	"time"

	"github.com/posguard/posguard/event"
)

// GroundTruth is what fraud staff know about accounts: the labels file of
// `policy test --labels` (HQ's GET /v1/cases/labels export, one
// event.AccountLabel per line). A replay scores the policy against it.
type GroundTruth struct {
	byAccount map[string]event.AccountLabel
	fraud     int
	legit     int
}

// NewGroundTruth indexes labels by account. The accounts must be distinct
// (event.ReadLabels checks it); a later label of an account wins.
func NewGroundTruth(labels []event.AccountLabel) *GroundTruth {
	g := &GroundTruth{byAccount: make(map[string]event.AccountLabel, len(labels))}
	for _, l := range labels {
		g.byAccount[l.Account] = l
	}
	for _, l := range g.byAccount {
		if l.Label == event.LabelFraud {
			g.fraud++
		} else {
			g.legit++
		}
	}
	return g
}

// ReadGroundTruth reads a labels file strictly (event.ReadLabels): one bad
// line refuses the whole file.
func ReadGroundTruth(r io.Reader) (*GroundTruth, error) {
	labels, err := event.ReadLabels(r)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return NewGroundTruth(labels), nil
}

// Len is the number of labelled accounts.
func (g *GroundTruth) Len() int { return len(g.byAccount) }

// Label is the label of a sale of account made at at, and whether the
// account is listed at all. A listed account's label covers its sales at
// or after the label's `at` (all of them without one); an earlier sale is
// unlabelled ("", true): the case vouches for nothing before the takeover.
func (g *GroundTruth) Label(account string, at time.Time) (label string, listed bool) {
	l, ok := g.byAccount[account]
	if !ok || account == "" {
		return "", false
	}
	if !l.At.IsZero() && at.Before(l.At) {
		return "", true
	}
	return l.Label, true
}

// TruthStats says how the labels file met the events.
type TruthStats struct {
	// Accounts, Fraud and Legit count the file's accounts.
	Accounts int `json:"accounts"`
	Fraud    int `json:"fraud"`
	Legit    int `json:"legit"`
	// Seen counts the file's accounts that paid in the replayed sales;
	// the others are not in these events (another period, other stores).
	Seen int `json:"seen"`
	// Sales is the sales labelled by the file; BeforeAt the sales of
	// listed accounts made before their label's `at`, left unlabelled.
	Sales    int `json:"sales"`
	BeforeAt int `json:"beforeAt"`
}
