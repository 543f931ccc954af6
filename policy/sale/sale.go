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
	// Score is the sum of the enforced fired rules' scores; the policy's
	// thresholds turn it into review or deny. ShadowScore is the sum of the
	// shadow rules' scores: reported, never acted on. Both are 0 (and left
	// out) under a policy without scores.
	Score       int `json:"score,omitempty"`
	ShadowScore int `json:"shadowScore,omitempty"`
	// Categories names the categories of the sale's lines, in the order
	// they first appear, when a rule fired: what the display and HQ show
	// for the cart without holding the policy.
	Categories []Names `json:"categories,omitempty"`
}

// PolicyRef names the policy that decided.
type PolicyRef struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// Fired is one rule that fired, enforced or shadow.
type Fired struct {
	ID     string `json:"id"`
	Action string `json:"action"` // review | deny | score
	Mode   string `json:"mode"`   // enforce | shadow
	Reason string `json:"reason"` // "tobacco cartons 5 > limit 2", English, for logs
	// Score is what the rule added to the decision's score (or, in shadow
	// mode, to its shadow score).
	Score int `json:"score,omitempty"`
	// Reasons say the same as Reason as codes and parameters, one per
	// limit exceeded, for readers to render in their language
	// (policy/reason).
	Reasons []Reason `json:"reasons,omitempty"`
}

// Reason is one cause of a fired rule: a code (ReasonCode) and the
// parameters its template reads. Value and Limit are in Unit; times are
// whole seconds. Fields a code does not use are zero.
type Reason struct {
	Code  string `json:"code"`
	Value int64  `json:"value"`          // what was measured
	Limit int64  `json:"limit"`          // the rule's limit (a minimum for topup.fresh and the age codes)
	Unit  string `json:"unit,omitempty"` // Unit*
	// Window is how far back the rule looks, in seconds.
	Window int64 `json:"window,omitempty"`
	// Ago is how long before the sale the top-up, device binding or
	// account creation was, in seconds.
	Ago int64 `json:"ago,omitempty"`
	// TopUp is the top-up amount in yen (topup.fresh).
	TopUp int64 `json:"topUp,omitempty"`
	// Spent is what the account spent since the top-up, this sale
	// included, when past sales count (topup.fresh), in yen.
	Spent int64 `json:"spent,omitempty"`
	// Scope and Place say where past sales were counted: "store" and the
	// store id, or "register" and the register id.
	Scope string `json:"scope,omitempty"`
	Place string `json:"place,omitempty"`
	// Category names what the rule counted, in both languages, so that a
	// reader needs no policy to render it; empty for the whole sale.
	Category Names `json:"category,omitzero"`
	// Text is free text the code carries: a token's rejection code, an
	// expr rule's own reason or error, the line out of range.
	Text string `json:"text,omitempty"`
	// TextJA is the Japanese of Text where the policy gives one (an expr
	// rule's reasonJa).
	TextJA string `json:"textJa,omitempty"`
}

// Names is a category (or a rule's set of categories) as people read it.
type Names struct {
	ID string `json:"id,omitempty"` // category id(s), comma-separated
	JA string `json:"ja,omitempty"`
	EN string `json:"en,omitempty"`
}

// Units of Reason.Value and Reason.Limit.
const (
	UnitYen      = "yen"
	UnitItems    = "items"    // cart lines' quantities
	UnitUnits    = "units"    // quantity × the catalog's units (packs in cartons)
	UnitSales    = "sales"    // sales of the account
	UnitAccounts = "accounts" // distinct accounts
	UnitSeconds  = "seconds"
)

// Reason codes, one per cause a rule kind reports; policy/reason has a
// template for each in every language.
const (
	CodeCartQuantity     = "cart.quantity"      // cart_limit maxQuantity
	CodeCartAmount       = "cart.amount"        // cart_limit maxAmount
	CodeCartUnits        = "cart.units"         // cart_limit maxUnits
	CodeSaleAmount       = "sale.amount"        // sale_amount
	CodeFreshTopUp       = "topup.fresh"        // fresh_topup
	CodeVelocitySales    = "velocity.sales"     // account_velocity maxSales
	CodeVelocityAmount   = "velocity.amount"    // account_velocity maxAmount
	CodeVelocityQuantity = "velocity.quantity"  // account_velocity maxQuantity
	CodeAccounts         = "accounts.distinct"  // register_accounts
	CodeNewDevice        = "device.new"         // new_device
	CodeNewAccount       = "account.new"        // account_age
	CodeForeignLogin     = "login.foreign"      // foreign_login
	CodeDenylisted       = "account.denylisted" // denylist
	CodeExpr             = "expr.true"          // expr, true (Text: its reason)
	CodeExprFailed       = "expr.failed"        // expr, failed or not run (Text: why)
	CodeTokenInvalid     = "token.invalid"      // token failed verification (Text: its code)
	CodeTokenUnknown     = "token.unknown"      // token of no known wallet (Text: its kind)
	CodeRange            = "sale.range"         // cart:range (Text: what is out of range)
	CodeOfflineSale      = "offline.sale"       // offline maxSaleAmount
	CodeOfflineQuantity  = "offline.quantity"   // offline category maxQuantity
	CodeOfflineAmount    = "offline.amount"     // offline category maxAmount
	CodeFailModeCategory = "failmode.category"  // no valid policy, category in the sale
	CodeFailModeSale     = "failmode.sale"      // no valid policy, sale over the amount
)

// Codes lists every reason code, for tests that every one has a template.
func Codes() []string {
	return []string{
		CodeCartQuantity, CodeCartAmount, CodeCartUnits, CodeSaleAmount, CodeFreshTopUp,
		CodeVelocitySales, CodeVelocityAmount, CodeVelocityQuantity, CodeAccounts,
		CodeNewDevice, CodeNewAccount, CodeForeignLogin, CodeDenylisted, CodeExpr,
		CodeExprFailed, CodeTokenInvalid, CodeTokenUnknown, CodeRange, CodeOfflineSale,
		CodeOfflineQuantity, CodeOfflineAmount, CodeFailModeCategory, CodeFailModeSale,
	}
}
