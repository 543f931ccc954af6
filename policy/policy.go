// Package policy is posguard's decision engine: the policy document (YAML,
// validated with every problem reported at once), and Evaluate, which turns a
// Request and the register's History into a Decision without I/O or clock
// reads.
package policy

import (
	"encoding/json"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"

	"github.com/posguard/posguard/policy/sale"
)

// Policy is a loaded, validated policy document. Build it with Load or
// LoadFile only: the unexported fields are filled by validation and
// Evaluate relies on them.
type Policy struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Scope      Scope    `yaml:"scope,omitempty" json:"scope"`
	Catalog    Catalog  `yaml:"catalog" json:"catalog"`
	Tokens     Tokens   `yaml:"tokens" json:"tokens"`
	Rules      []Rule   `yaml:"rules" json:"rules"`
	Offline    Offline  `yaml:"offline,omitempty" json:"offline"`
	FailMode   FailMode `yaml:"failMode" json:"failMode"`
	// Thresholds turn the decision's score into review or deny; zero
	// (absent from the canonical JSON) in a policy without scores.
	Thresholds Thresholds `yaml:"thresholds,omitempty" json:"thresholds,omitzero"`

	items      map[string]int        // JAN -> index in Catalog.Items
	labels     map[string]string     // category id -> label
	names      map[string]sale.Names // category id -> its names for reasons
	ranges     []int                 // indexes of Catalog.Ranges, longest prefix first
	offlineIDs []string              // "offline:<category>" per Offline.Categories, built once
	evals      *sync.Pool            // of *evaluation, so a warm policy decides without allocating
	catVals    map[string]ref.Val    // category id -> its CEL string, when the policy has expr rules
}

// Metadata names and versions a policy. Version only goes up; agents refuse
// older versions.
type Metadata struct {
	Name        string    `yaml:"name" json:"name"`
	Version     int64     `yaml:"version" json:"version"`
	Description string    `yaml:"description,omitempty" json:"description,omitempty"`
	IssuedAt    time.Time `yaml:"issuedAt" json:"issuedAt"`
	ExpiresAt   time.Time `yaml:"expiresAt" json:"expiresAt"`
}

// Scope lists the stores a policy applies to; empty or "all" means every
// store.
type Scope struct {
	Stores []string `yaml:"stores,omitempty" json:"stores,omitempty"`
}

// Catalog maps item barcodes to what the rules reason about.
type Catalog struct {
	Categories []Category `yaml:"categories" json:"categories"`
	Items      []Item     `yaml:"items,omitempty" json:"items,omitempty"`
	Ranges     []Range    `yaml:"ranges,omitempty" json:"ranges,omitempty"`
}

// Category is a group of items the rules name. Label is what the English
// reason sentence prints ("tobacco cartons"); Names are what people read
// on the display, the POS and HQ, in Japanese and English (Names.EN
// defaults to Label and Label to Names.EN). HighRisk marks the categories
// failMode reviews by default.
type Category struct {
	ID       string `yaml:"id" json:"id"`
	Label    string `yaml:"label,omitempty" json:"label,omitempty"`
	Names    Names  `yaml:"names,omitempty" json:"names,omitzero"`
	HighRisk bool   `yaml:"highRisk,omitempty" json:"highRisk,omitempty"`
}

// Names is a category's display name in each language the reasons are
// rendered in (policy/reason).
type Names struct {
	JA string `yaml:"ja,omitempty" json:"ja,omitempty"`
	EN string `yaml:"en,omitempty" json:"en,omitempty"`
}

// Thresholds are the scores at which a sale is reviewed or denied: the
// outcome is the strongest of the enforced rules' actions and the band the
// summed score falls in. Zero means no such band.
type Thresholds struct {
	Review int `yaml:"review,omitempty" json:"review,omitempty"`
	Deny   int `yaml:"deny,omitempty" json:"deny,omitempty"`
}

// set reports whether the policy scores sales at all.
func (t Thresholds) set() bool { return t.Review > 0 || t.Deny > 0 }

// Item is one catalog entry. Units is how many sellable units one scan is
// (a carton = 10 packs); 0 in the document means 1.
type Item struct {
	JAN       string `yaml:"jan" json:"jan"`
	Name      string `yaml:"name" json:"name"`
	Category  string `yaml:"category" json:"category"`
	UnitPrice int64  `yaml:"unitPrice" json:"unitPrice"`
	Units     int    `yaml:"units,omitempty" json:"units,omitempty"`
}

// Range gives every JAN whose leading digits fall in [From, To] the same
// item data; From and To have the same length. It covers a maker's code
// block without listing each product.
type Range struct {
	From      string `yaml:"from" json:"from"`
	To        string `yaml:"to" json:"to"`
	Name      string `yaml:"name" json:"name"`
	Category  string `yaml:"category" json:"category"`
	UnitPrice int64  `yaml:"unitPrice,omitempty" json:"unitPrice,omitempty"`
	Units     int    `yaml:"units,omitempty" json:"units,omitempty"`
}

// ActionScore is the action of a rule that only adds its score: it reviews
// or denies nothing by itself.
const ActionScore = "score"

// Rule modes: a shadow rule is evaluated and listed but never changes the
// outcome, so a chain can try a rule before enforcing it.
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"
)

// Rule is one check. Which limit fields apply depends on Kind: each kind's
// file (rule_<kind>.go) names its part of them and what they mean, and
// testdata/chain-default.yaml shows every kind in use. The fields stay in
// one struct because kinds share them (maxAmount, window, within) and the
// document, whose canonical JSON is signed, is one object per rule.
type Rule struct {
	ID     string `yaml:"id" json:"id"`
	Kind   string `yaml:"kind" json:"kind"`
	Action string `yaml:"action" json:"action"`
	Mode   string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Score is what the rule adds to the sale's score when it fires (to
	// the shadow score in shadow mode); the policy's thresholds act on the
	// sum.
	Score       int      `yaml:"score,omitempty" json:"score,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Categories  []string `yaml:"categories,omitempty" json:"categories,omitempty"`
	// Label replaces the joined category labels in reasons, and Names
	// the joined category names people read (Names.EN defaults to Label).
	Label string `yaml:"label,omitempty" json:"label,omitempty"`
	// Unless names a fact that keeps the rule from firing (unless.go).
	Unless string `yaml:"unless,omitempty" json:"unless,omitempty"`
	Names  Names  `yaml:"names,omitempty" json:"names,omitzero"`

	// Limits are pointers so that 0 ("none at all") differs from unset.
	MaxQuantity *int   `yaml:"maxQuantity,omitempty" json:"maxQuantity,omitempty"`
	MaxAmount   *int64 `yaml:"maxAmount,omitempty" json:"maxAmount,omitempty"`
	MaxUnits    *int   `yaml:"maxUnits,omitempty" json:"maxUnits,omitempty"`
	MaxSales    *int   `yaml:"maxSales,omitempty" json:"maxSales,omitempty"`
	MaxAccounts *int   `yaml:"maxAccounts,omitempty" json:"maxAccounts,omitempty"`

	MinAmount int64    `yaml:"minAmount,omitempty" json:"minAmount,omitempty"`
	MinTopUp  int64    `yaml:"minTopUp,omitempty" json:"minTopUp,omitempty"`
	Within    Duration `yaml:"within,omitempty" json:"within,omitempty"`
	Window    Duration `yaml:"window,omitempty" json:"window,omitempty"`
	MinAge    Duration `yaml:"minAge,omitempty" json:"minAge,omitempty"`

	// Scope says where the history a rule reads was made: ScopeStore
	// (every till of the store, the default) or ScopeRegister (this till).
	Scope string `yaml:"scope,omitempty" json:"scope,omitempty"`

	Expr   string `yaml:"expr,omitempty" json:"expr,omitempty"`
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
	// ReasonJA is Reason in Japanese, for the staff's screens.
	ReasonJA string `yaml:"reasonJa,omitempty" json:"reasonJa,omitempty"`

	label string      // Label or the category labels joined, built at load
	names sale.Names  // the categories' names for reasons, built at load
	prog  cel.Program // expr only, compiled at load
	eval  ruleEval    // the kind's evaluation, set at load

	// The texts of Window, Within and MinAge for reasons, built at load.
	windowText, withinText, minAgeText string
}

// Offline holds the limits that apply while the register cannot reach HQ
// (Request.Offline): the denylist may be stale then, so the till is stricter.
type Offline struct {
	Action        string         `yaml:"action,omitempty" json:"action,omitempty"`
	MaxSaleAmount *int64         `yaml:"maxSaleAmount,omitempty" json:"maxSaleAmount,omitempty"`
	Categories    []OfflineLimit `yaml:"categories,omitempty" json:"categories,omitempty"`
}

// OfflineLimit caps one category in one sale while offline.
type OfflineLimit struct {
	Category    string `yaml:"category" json:"category"`
	MaxQuantity *int   `yaml:"maxQuantity,omitempty" json:"maxQuantity,omitempty"`
	MaxAmount   *int64 `yaml:"maxAmount,omitempty" json:"maxAmount,omitempty"`
}

// FailMode says what to do when the rules cannot judge: with no valid policy
// at all (EvaluateFailMode), and, under a valid policy, with a token that
// failed verification (InvalidToken) or matched no known wallet
// (UnknownToken).
type FailMode struct {
	// Action is taken on a sale containing any of Categories, or above
	// MaxSaleAmount, when there is no valid policy.
	Action        string   `yaml:"action,omitempty" json:"action,omitempty"`
	Categories    []string `yaml:"categories,omitempty" json:"categories,omitempty"`
	MaxSaleAmount *int64   `yaml:"maxSaleAmount,omitempty" json:"maxSaleAmount,omitempty"`
	// InvalidToken is review or deny, never allow; default deny.
	InvalidToken string `yaml:"invalidToken,omitempty" json:"invalidToken,omitempty"`
	// UnknownToken is allow, review or deny; default review.
	UnknownToken string `yaml:"unknownToken,omitempty" json:"unknownToken,omitempty"`
}

// DefaultFailMode is used when the agent has never had a valid policy: it
// reviews every sale with tobacco or e-cigarettes (the goods the 7pay crews
// resold) and allows the rest; invalid tokens are denied, unknown ones
// reviewed.
func DefaultFailMode() FailMode {
	return FailMode{
		Action:       string(Review),
		Categories:   []string{"tobacco", "tobacco-carton", "e-cigarette"},
		InvalidToken: string(Deny),
		UnknownToken: string(Review),
	}
}

// Item looks a barcode up in the catalog: the exact JAN first, then the
// most specific range covering it.
func (p *Policy) Item(jan string) (Item, bool) {
	if i, ok := p.items[jan]; ok {
		return p.Catalog.Items[i], true
	}
	for _, i := range p.ranges {
		r := &p.Catalog.Ranges[i]
		if len(jan) < len(r.From) {
			continue
		}
		head := jan[:len(r.From)]
		if head >= r.From && head <= r.To {
			return Item{JAN: jan, Name: r.Name, Category: r.Category, UnitPrice: r.UnitPrice, Units: r.Units}, true
		}
	}
	return Item{}, false
}

// Label is the human name of a category for reasons ("tobacco cartons").
func (p *Policy) Label(category string) string {
	if l, ok := p.labels[category]; ok {
		return l
	}
	return category
}

// CategoryNames are a category's names for reasons: its id and its
// Japanese and English names (the id where the catalog has none).
func (p *Policy) CategoryNames(category string) sale.Names {
	if n, ok := p.names[category]; ok {
		return n
	}
	return sale.Names{ID: category, EN: category}
}

// Canonical is the policy document as JSON with a fixed field order, UTC
// times and normalised durations, so the same policy always gives the same
// bytes (what a bundle signs). Load accepts it back.
func (p *Policy) Canonical() ([]byte, error) {
	return json.Marshal(p)
}

// Expired reports whether the policy is no longer valid at the given time.
// The expiry instant itself is already expired.
func (p *Policy) Expired(at time.Time) bool {
	return !at.Before(p.Metadata.ExpiresAt)
}

// Covers reports whether the policy applies to the store.
func (p *Policy) Covers(store string) bool {
	if len(p.Scope.Stores) == 0 {
		return true
	}
	for _, s := range p.Scope.Stores {
		if s == "all" || s == store {
			return true
		}
	}
	return false
}
