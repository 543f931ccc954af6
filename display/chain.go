package display

import (
	"errors"
	"fmt"
	"slices"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy/reason"
)

// ChainRegister is the register column of an alert HQ's chain rules raised:
// it concerns the store, not one till.
const ChainRegister = "HQ"

// applyChainAlert puts an alert of HQ's chain rules about this store on the
// board. Only HQ may publish on the topic (broker ACL); the alert must
// still be a chain alert that names this store.
func (s *Server) applyChainAlert(payload []byte) error {
	ev, err := event.Parse(payload)
	if err != nil {
		return err
	}
	if ev.Chain == nil {
		return errors.New("HQ alert without chain")
	}
	if !slices.Contains(ev.Chain.Stores, s.cfg.Store) {
		return fmt.Errorf("HQ alert %s is about %v, not this store", ev.ID, ev.Chain.Stores)
	}
	if a, ok := s.board.Alert(chainAlertFrom(ev), s.now()); ok {
		s.broadcast("alert", a)
	}
	return nil
}

// chainAlertFrom shows a chain alert as a deny-like alert with nothing to
// resolve: the rule, its reason and the (masked) account.
func chainAlertFrom(ev event.Event) board.Alert {
	c := ev.Chain
	return board.Alert{
		ID: ev.ID, Register: ChainRegister, At: ev.At, Outcome: board.Chain,
		Rules:   []board.Rule{{ID: c.Rule, Action: "alert", Mode: c.Mode, Reason: c.Reason}},
		Cart:    []board.Line{},
		Account: reason.MaskAccount(c.Account),
		Detail:  ev.Detail,
	}
}
