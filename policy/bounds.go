package policy

import (
	"math"
	"strconv"

	"github.com/posguard/posguard/policy/sale"
)

// Bounds of the numbers a policy and a sale may carry. Amounts are int64 yen
// and a sale's total is a sum of quantity × unit price: without bounds a
// catalog price of 4.6×10^18 yen times 2 wraps to a negative total and no
// limit fires. Within these bounds no sum of a sale (MaxLines lines of
// MaxLineQuantity at MaxUnitPrice is 5×10^13 yen) comes near overflowing,
// and Evaluate still checks every sum and denies a sale it cannot add up.
const (
	// MaxUnitPrice is the highest catalog price of one item, in yen.
	MaxUnitPrice = 10_000_000
	// MaxItemUnits is the most sellable units one scan may be (a carton
	// is 10 packs).
	MaxItemUnits = 1000
	// MaxLineQuantity is the most of one item a sale may have; the agent
	// refuses larger quantities at its API and in its cart.
	MaxLineQuantity = 9999
	// MaxLimitAmount bounds amount limits and thresholds (maxAmount,
	// minAmount, minTopUp, maxSaleAmount): ¥1,000,000,000,000.
	MaxLimitAmount = 1_000_000_000_000
	// MaxLimitCount bounds count limits (maxQuantity, maxUnits, maxSales,
	// maxAccounts).
	MaxLimitCount = 1_000_000
)

// RangeRuleID is the built-in deny for a sale whose numbers are out of range
// or whose sums overflow: a total that cannot be computed cannot be judged,
// so the sale is refused rather than compared with a wrapped number.
const RangeRuleID = "cart:range"

// atMost reports a number above its bound; negatives are reported by the
// callers' own ">= 0" checks.
func (v *validator) atMost(path string, n, max int64) {
	if n > max {
		v.add(path, "must be at most %s, got %s", strconv.FormatInt(max, 10), strconv.FormatInt(n, 10))
	}
}

// maxCount and maxAmount bound an optional limit.
func (v *validator) maxCount(path string, n *int) {
	if n != nil {
		v.atMost(path, int64(*n), MaxLimitCount)
	}
}

func (v *validator) maxAmount(path string, n *int64) {
	if n != nil {
		v.atMost(path, *n, MaxLimitAmount)
	}
}

// addSat adds non-negative a and b, saturating at MaxInt64; ok is false
// when the sum overflowed.
func addSat(a, b int64) (sum int64, ok bool) {
	if a > math.MaxInt64-b {
		return math.MaxInt64, false
	}
	return a + b, true
}

// mulSat multiplies non-negative a and b, saturating at MaxInt64.
func mulSat(a, b int64) (prod int64, ok bool) {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64, false
	}
	return a * b, true
}

// lineRange says what is wrong with a line's numbers, "" when nothing. The
// sentence is built only for a line out of range: this runs on every line
// of every sale.
func lineRange(i int, l *Line) string {
	var what string
	switch {
	case l.Quantity < 0 || l.Quantity > MaxLineQuantity:
		what = "quantity " + strconv.Itoa(l.Quantity) + " out of range 0.." + strconv.Itoa(MaxLineQuantity)
	case l.UnitPrice < 0 || l.UnitPrice > MaxUnitPrice:
		what = "unit price " + yen(l.UnitPrice) + " out of range ¥0.." + yen(MaxUnitPrice)
	default:
		return ""
	}
	return "line " + strconv.Itoa(i+1) + " (" + l.JAN + "): " + what
}

// safeLines is how many in-range lines a sale may have before its sums could
// overflow: units in an int (32 bits on 386 and arm), amounts in an int64.
// Up to it, checkRange need not add the sale up a second time.
const safeLines = min(math.MaxInt/(MaxLineQuantity*MaxItemUnits), math.MaxInt64/(MaxLineQuantity*MaxUnitPrice))

// checkRange denies a sale whose lines are out of range or whose total
// overflows. It runs once per evaluation, before the rules, and allocates
// only when it fires.
// RangeFired is the built-in cart:range rule denying a sale for why, for
// what a caller refuses before the engine sees it (the agent's cart of more
// than MaxLines items).
func RangeFired(why string) Fired {
	return Fired{ID: RangeRuleID, Action: string(Deny), Mode: ModeEnforce, Reason: "sale refused: " + why,
		Reasons: []sale.Reason{{Code: sale.CodeRange, Text: why}}}
}

func (e *evaluation) checkRange() {
	for i := range e.req.Lines {
		if why := lineRange(i, &e.req.Lines[i]); why != "" {
			e.w("sale refused: ")
			e.w(why)
			e.builtin(RangeRuleID, string(Deny), sale.Reason{Code: sale.CodeRange, Text: why})
			return
		}
	}
	if len(e.req.Lines) <= safeLines {
		return
	}
	if s := e.sums(nil, true); s.overflow {
		e.w("sale refused: its total overflows")
		e.builtin(RangeRuleID, string(Deny), sale.Reason{Code: sale.CodeRange, Text: "its total overflows"})
	}
}
