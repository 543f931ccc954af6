// Package sale holds the vocabulary of one decision: the Request a register
// builds for a sale and the Decision it gets back. It is the part of the
// policy contract that events carry, kept apart from the policy engine so
// that readers of events (HQ, the store display) do not link the CEL engine.
package sale

import "time"

// Outcome is what the register does with a sale. The order of the constants is
// their strength: the decision is the strongest enforced outcome.
type Outcome string

const (
	Allow  Outcome = "allow"
	Review Outcome = "review"
	Deny   Outcome = "deny"
)

// Request is everything Evaluate may look at for one sale. The caller fills it;
// Evaluate never reads a clock, so At is the only "now" there is.
type Request struct {
	SaleID   string    `json:"saleId"`
	Store    string    `json:"store"`
	Register string    `json:"register"`
	At       time.Time `json:"at"`
	Lines    []Line    `json:"lines"`
	Payment  Payment   `json:"payment"`
	// Offline is true when the register has had no HQ contact for the
	// configured period; the policy's offline limits then apply.
	Offline bool `json:"offline,omitempty"`
	// Allowlisted is true when the paying account, verified, is on HQ's
	// allowlist with an entry not expired at At (a case found it
	// legitimate); rules with `unless: allowlisted` then do not fire. The
	// register fills it, never its caller, and it is kept in the event so
	// a backtest replays the fact as it was.
	Allowlisted bool `json:"allowlisted,omitempty"`
}

// Line is one cart line. Category is resolved from the policy catalog by the
// caller (Policy.Item); an item the catalog does not know has category
// "unknown".
type Line struct {
	JAN       string `json:"jan"`
	Category  string `json:"category"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"` // yen
}

// Payment is the decoded, verified payment token as the policy sees it.
// Zero times mean "the token does not say".
type Payment struct {
	Kind    string `json:"kind"` // pg1 | emv-cpm | opaque | unknown
	Issuer  string `json:"issuer,omitempty"`
	Account string `json:"account"` // account key: PG1 sub, hash of EMV PAN, opaque text hash
	TokenID string `json:"tokenId,omitempty"`
	// Invalid is the token package's reason code when verification failed
	// (replayed, bad_signature, expired, ...); empty when the token is valid.
	Invalid string `json:"invalid,omitempty"`

	DeviceID     string    `json:"deviceId,omitempty"`     // "dv", hex
	DeviceSince  time.Time `json:"deviceSince,omitzero"`   // "ds"
	AccountSince time.Time `json:"accountSince,omitzero"`  // "as"
	TopUpAt      time.Time `json:"topUpAt,omitzero"`       // "ta"
	TopUpAmount  int64     `json:"topUpAmount,omitempty"`  // "tm", yen
	ForeignLogin bool      `json:"foreignLogin,omitempty"` // "fl"
	ATC          int       `json:"atc,omitempty"`          // EMV application transaction counter
}

// Decision is the answer for one sale.
type Decision struct {
	Outcome Outcome   `json:"outcome"`
	Policy  PolicyRef `json:"policy"`
	Rules   []Fired   `json:"rules"`
	// Offline is true when the offline limits were applied.
	Offline bool `json:"offline,omitempty"`
	// FailMode is true when no valid policy was available and failMode decided.
	FailMode bool `json:"failMode,omitempty"`
}

// PolicyRef names the policy that decided.
type PolicyRef struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// Fired is one rule that fired, enforced or shadow.
type Fired struct {
	ID     string `json:"id"`
	Action string `json:"action"` // review | deny
	Mode   string `json:"mode"`   // enforce | shadow
	Reason string `json:"reason"` // "tobacco cartons 5 > limit 2"
}
