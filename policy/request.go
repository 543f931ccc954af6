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

// History is the register's memory of past sales; the agent backs it with
// bbolt. Implementations must be safe for concurrent use and should not
// allocate on lookups. An empty categories slice means "all categories".
type History interface {
	// AccountSales sums the account's sales at or after since.
	AccountSales(account string, since time.Time, categories []string) Totals
	// RegisterAccounts counts distinct accounts other than exclude that paid
	// for any of categories at this store/register at or after since.
	RegisterAccounts(store, register string, since time.Time, categories []string, exclude string) int
	// Denylisted reports whether HQ has put the account on the denylist.
	Denylisted(account string) bool
}
