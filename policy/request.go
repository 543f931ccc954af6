package policy

import (
	"time"

	"github.com/posguard/posguard/policy/sale"
)

// The decision vocabulary lives in policy/sale so that event readers need not
// link the engine; these aliases keep it the policy package's own words.
type (
	Outcome   = sale.Outcome
	Request   = sale.Request
	Line      = sale.Line
	Payment   = sale.Payment
	Decision  = sale.Decision
	PolicyRef = sale.PolicyRef
	Fired     = sale.Fired
)

const (
	Allow  = sale.Allow
	Review = sale.Review
	Deny   = sale.Deny
)

// Totals are sums over past sales.
type Totals struct {
	Sales    int   `json:"sales"`
	Amount   int64 `json:"amount"`   // yen, summed over the asked categories
	Quantity int   `json:"quantity"` // items, summed over the asked categories
}

// History is the memory of past sales a register decides with: its own
// sales and those its peers at the same store shared, each with the store
// and register it was made at. The agent backs it with bbolt.
// Implementations must be safe for concurrent use and should not allocate
// on lookups. An empty categories slice means "all categories".
//
// A lookup is scoped by store and register: register "" means every
// register of the store, so a rule asks about its own till or the whole
// store with the same call (Rule.Scope). Sales of other stores never count.
type History interface {
	// AccountSales sums the account's sales at store (at register, unless
	// it is "") at or after since.
	AccountSales(account, store, register string, since time.Time, categories []string) Totals
	// DistinctAccounts counts distinct accounts other than exclude that
	// paid for any of categories at store (at register, unless it is "")
	// at or after since.
	DistinctAccounts(store, register string, since time.Time, categories []string, exclude string) int
	// Denylisted reports whether HQ has put the account on the denylist.
	Denylisted(account string) bool
}
