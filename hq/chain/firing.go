package chain

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
)

// firingRecord is a Firing as the store keeps it until it is carried out.
// It holds the rule as it was when it fired (a changed document does not
// change what a firing does), and of the trigger what the actions use.
type firingRecord struct {
	Rule        string          `json:"rule"`
	Kind        string          `json:"kind"`
	Mode        string          `json:"mode"`
	Actions     []string        `json:"actions,omitempty"`
	DenylistFor policy.Duration `json:"denylistFor,omitempty"`
	TriggerID   string          `json:"trigger"`
	Store       string          `json:"store"`
	At          time.Time       `json:"at"`
	Account     string          `json:"account,omitempty"`
	Accounts    []string        `json:"accounts,omitempty"`
	Stores      []string        `json:"stores,omitempty"`
	Events      []string        `json:"events"`
	Reason      string          `json:"reason"`
}

func (f *Firing) marshal() ([]byte, error) {
	return json.Marshal(firingRecord{
		Rule: f.Rule.ID, Kind: f.Rule.Kind, Mode: f.Rule.Mode, Actions: f.Rule.Actions, DenylistFor: f.Rule.DenylistFor,
		TriggerID: f.Trigger.ID, Store: f.Trigger.Store, At: f.Trigger.At,
		Account: f.Account, Accounts: f.Accounts, Stores: f.Stores, Events: f.Events, Reason: f.Reason,
	})
}

// Pending is a firing the store handed out to be carried out
// (store.Chain.ChainClaim).
type Pending struct {
	Firing
	Tries int // claims so far, this one included
}

// ParsePending reads a firing the store kept. Its Rule holds what the
// rule was when it fired (id, kind, mode, actions, denylistFor) and its
// Trigger the event's id, store and time.
func ParsePending(sf store.ChainFiring) (Pending, error) {
	var r firingRecord
	if err := json.Unmarshal(sf.Body, &r); err != nil {
		return Pending{}, fmt.Errorf("chain firing %s: %w", sf.ID, err)
	}
	p := Pending{Tries: sf.Tries, Firing: Firing{
		Rule:    &Rule{ID: r.Rule, Kind: r.Kind, Mode: r.Mode, Actions: r.Actions, DenylistFor: r.DenylistFor},
		Trigger: event.Event{ID: r.TriggerID, Store: r.Store, At: r.At.UTC()},
		Account: r.Account, Accounts: r.Accounts, Stores: r.Stores, Events: r.Events, Reason: r.Reason,
	}}
	if id := p.ID(); id != sf.ID {
		return Pending{}, fmt.Errorf("chain firing %s: its body is firing %s", sf.ID, id)
	}
	return p, nil
}
