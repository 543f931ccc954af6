package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posguard/posguard/internal/ascii"
)

// Bounds of a facts message. One message carries one decided sale, whose
// lines are folded per category: a few hundred bytes in practice. The byte
// bound is above the largest message Validate lets through (64 categories
// of 256 bytes, escaped), so whatever validates also fits.
const (
	MaxFactsBytes   = 64 << 10
	MaxFactCats     = 64
	MaxReplayKeyLen = MaxTextLen
	// maxFactQty and maxFactAmount bound a category's sums: a sale has at
	// most a few hundred lines of at most policy.MaxLineQuantity units at
	// policy.MaxUnitPrice yen (wire imports no policy, so the numbers are
	// rounded up here rather than shared).
	maxFactQty    = 10_000_000
	maxFactAmount = 1_000_000_000_000_000
)

// Facts is what one register tells the other registers of its store about
// one decided sale, on FactsTopic: what a peer needs to refuse a replayed
// token and to count the sale in store-wide account rules, nothing more
// (no items, no price list, no PAN: account keys are the keyed hashes of
// the events).
type Facts struct {
	// ID is the decision event's id, {store}/{register}/{epoch}/{seq}:
	// unique per register file, so a receiver applies a redelivered
	// message once.
	ID       string    `json:"id"`
	Store    string    `json:"store"`
	Register string    `json:"register"`
	At       time.Time `json:"at"`
	Outcome  string    `json:"outcome"` // allow | review | deny, as policy.Outcome
	// Account is the sale's account key; empty for a token without one.
	Account string `json:"account,omitempty"`
	// Spent is the one-time token id the sale used, when it had one.
	Spent *Spent `json:"spent,omitempty"`
	// ATC is the EMV application transaction counter accepted for
	// Account: a peer refuses a counter not above the store's highest.
	ATC *uint32 `json:"atc,omitempty"`
	// Cats are the sale's lines folded per category.
	Cats []FactCat `json:"cats,omitempty"`
}

// Spent is a used one-time token: its replay key (pg1:{cti},
// emv:{account}:{atc}, opaque:{hash}, the key the register's own ledger
// keeps) and until when the mark must be kept.
type Spent struct {
	Key   string    `json:"key"`
	Until time.Time `json:"until"`
}

// FactCat is one category's quantity and amount (yen) in a sale.
type FactCat struct {
	Cat    string `json:"cat"`
	Qty    int    `json:"qty"`
	Amount int64  `json:"amount"`
}

// Validate checks every field and that the message says something.
func (f *Facts) Validate() error {
	if err := CheckEventID(f.ID); err != nil {
		return fmt.Errorf("facts: id: %w", err)
	}
	if err := ValidateStore(f.Store); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	if err := ValidateRegister(f.Register); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	if !strings.HasPrefix(f.ID, f.Store+"/"+f.Register+"/") {
		return fmt.Errorf("facts: id %q is not one of %s/%s's", f.ID, f.Store, f.Register)
	}
	if f.At.IsZero() {
		return errors.New("facts: at: required")
	}
	switch f.Outcome {
	case "allow", "review", "deny":
	case "":
		return errors.New("facts: outcome: required")
	default:
		return fmt.Errorf("facts: outcome %q is not allow, review or deny", f.Outcome)
	}
	if f.Account != "" {
		if err := CheckAccount(f.Account); err != nil {
			return fmt.Errorf("facts: account: %w", err)
		}
	}
	if s := f.Spent; s != nil {
		if s.Key == "" {
			return errors.New("facts: spent.key: required")
		}
		if len(s.Key) > MaxReplayKeyLen {
			return fmt.Errorf("facts: spent.key: longer than %d bytes", MaxReplayKeyLen)
		}
		if err := ascii.Visible("facts: spent.key", s.Key); err != nil {
			return err
		}
		if s.Until.IsZero() {
			return errors.New("facts: spent.until: required")
		}
	}
	if f.Account == "" && (f.ATC != nil || len(f.Cats) > 0) {
		return errors.New("facts: atc and cats need an account")
	}
	if f.Account == "" && f.Spent == nil {
		return errors.New("facts: neither an account nor a spent token: nothing to share")
	}
	if len(f.Cats) > MaxFactCats {
		return fmt.Errorf("facts: %d categories, limit %d", len(f.Cats), MaxFactCats)
	}
	for i, c := range f.Cats {
		if err := checkText(fmt.Sprintf("facts: cats[%d].cat", i), c.Cat, true); err != nil {
			return err
		}
		if c.Qty < 0 || c.Qty > maxFactQty {
			return fmt.Errorf("facts: cats[%d].qty %d: want 0..%d", i, c.Qty, maxFactQty)
		}
		if c.Amount < 0 || c.Amount > maxFactAmount {
			return fmt.Errorf("facts: cats[%d].amount %d: want 0..%d", i, c.Amount, int64(maxFactAmount))
		}
	}
	return nil
}

// CheckTopic refuses facts that did not arrive on their register's own
// topic: the broker lets a register write only its own, so a message that
// claims another register on it is forged.
func (f *Facts) CheckTopic(topic string) error {
	store, reg, err := ParseFactsTopic(topic)
	if err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	if store != f.Store || reg != f.Register {
		return fmt.Errorf("facts: from %s/%s but arrived on %s", f.Store, f.Register, topic)
	}
	return nil
}

// Marshal validates and encodes the facts.
func (f Facts) Marshal() ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(f)
}

// ParseFacts decodes and validates facts that arrived on topic.
func ParseFacts(topic string, data []byte) (Facts, error) {
	var f Facts
	if err := decodeStrict(data, MaxFactsBytes, "facts", &f); err != nil {
		return Facts{}, err
	}
	if err := f.Validate(); err != nil {
		return Facts{}, err
	}
	if err := f.CheckTopic(topic); err != nil {
		return Facts{}, err
	}
	return f, nil
}
