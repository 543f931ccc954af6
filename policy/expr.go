package policy

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Limits on expr rules. A register decides in well under a millisecond, so
// an expression gets a bounded budget. The budget is checked once, at load,
// against the worst sale an expression can be handed (MaxLines lines, every
// text MaxText bytes): an expression whose worst case is over exprCostLimit
// is rejected there, so no cost tracker has to run on every sale, and a sale
// beyond those bounds fails expr rules closed instead of being costed.
const (
	exprCostLimit      = 50_000
	exprMaxLength      = 4096
	exprRecursionLimit = 32

	// MaxLines is the most cart lines an expr rule is costed for; the
	// agent refuses larger carts.
	MaxLines = 500
	// MaxText is the most bytes of any text (ids, JANs, categories, token
	// claims) an expr rule is costed for.
	MaxText = 256
	// historyCallCost prices a history lookup: a real bbolt-backed index
	// walk, far dearer than an operator.
	historyCallCost = 100
)

// celSale is the "sale" variable of expr rules.
type celSale struct {
	ID         string           `cel:"id"`
	Store      string           `cel:"store"`
	Register   string           `cel:"register"`
	At         time.Time        `cel:"at"`
	Offline    bool             `cel:"offline"`
	Amount     int64            `cel:"amount"`
	Quantity   int64            `cel:"quantity"`
	Lines      []celLine        `cel:"lines"`
	Quantities map[string]int64 `cel:"quantities"` // per category
	Amounts    map[string]int64 `cel:"amounts"`    // per category, yen

	list lineList // Lines as CEL reads them
}

type celLine struct {
	JAN       string `cel:"jan"`
	Category  string `cel:"category"`
	Quantity  int64  `cel:"quantity"`
	UnitPrice int64  `cel:"unitPrice"`
	Amount    int64  `cel:"amount"`
	Units     int64  `cel:"units"`

	category ref.Val // Category, boxed once per policy
}

// celToken is the "token" variable. Times the token does not carry are the
// zero timestamp (year 1), so "sale.at - token.topUpAt < duration('1h')" is
// false for them.
type celToken struct {
	Kind         string    `cel:"kind"`
	Issuer       string    `cel:"issuer"`
	Account      string    `cel:"account"`
	DeviceID     string    `cel:"deviceId"`
	DeviceSince  time.Time `cel:"deviceSince"`
	AccountSince time.Time `cel:"accountSince"`
	TopUpAt      time.Time `cel:"topUpAt"`
	TopUpAmount  int64     `cel:"topUpAmount"`
	ForeignLogin bool      `cel:"foreignLogin"`
	ATC          int64     `cel:"atc"`
}

// historyVal is the "history" variable: an opaque handle whose member
// functions query the History for the sale's account, store and register,
// so an expression cannot ask about other accounts or stores. The
// account's totals are store-wide, the default scope of the account rule
// kinds; distinct accounts come per register and per store.
type historyVal struct {
	h   History
	req *Request
}

const historyTypeName = "posguard.History"

// historyType is built once: Type is asked on every call through history.
var historyType = types.NewOpaqueType(historyTypeName)

// accountSales is the paying account's sales at this store.
func (h *historyVal) accountSales(since time.Time, cats []string) Totals {
	return h.h.AccountSales(h.req.Payment.Account, h.req.Store, "", since, cats)
}

func (h *historyVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("history cannot leave the expression")
}
func (h *historyVal) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("history cannot be converted")
}
func (h *historyVal) Equal(ref.Val) ref.Val { return types.False }
func (h *historyVal) Type() ref.Type        { return historyType }
func (h *historyVal) Value() any            { return h }

type celEnv struct{ env *cel.Env }

func newCELEnv() (*celEnv, error) {
	histT := cel.OpaqueType(historyTypeName)
	strList := cel.ListType(cel.StringType)
	histInt := func(name string, f func(h *historyVal, since time.Time, cats []string) int64) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("history_"+name,
			[]*cel.Type{histT, cel.DurationType, strList}, cel.IntType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				h, ok := args[0].(*historyVal)
				if !ok {
					return types.NewErr("%s: not a history", name)
				}
				d, ok := args[1].Value().(time.Duration)
				if !ok {
					return types.NewErr("%s: window is not a duration", name)
				}
				cats, err := args[2].ConvertToNative(reflect.TypeOf([]string(nil)))
				if err != nil {
					return types.NewErr("%s: categories: %v", name, err)
				}
				return types.Int(f(h, h.req.At.Add(-d), cats.([]string)))
			})))
	}
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeOf(celSale{}), reflect.TypeOf(celLine{}), reflect.TypeOf(celToken{}), ext.ParseStructTags(true)),
		cel.Variable("sale", cel.ObjectType("policy.celSale")),
		cel.Variable("token", cel.ObjectType("policy.celToken")),
		cel.Variable("history", histT),
		cel.ParserExpressionSizeLimit(exprMaxLength),
		cel.ParserRecursionLimit(exprRecursionLimit),
		histInt("accountSales", func(h *historyVal, since time.Time, cats []string) int64 {
			return int64(h.accountSales(since, cats).Sales)
		}),
		histInt("accountAmount", func(h *historyVal, since time.Time, cats []string) int64 {
			return h.accountSales(since, cats).Amount
		}),
		histInt("accountQuantity", func(h *historyVal, since time.Time, cats []string) int64 {
			return int64(h.accountSales(since, cats).Quantity)
		}),
		histInt("registerAccounts", func(h *historyVal, since time.Time, cats []string) int64 {
			return int64(h.h.DistinctAccounts(h.req.Store, h.req.Register, since, cats, h.req.Payment.Account))
		}),
		histInt("storeAccounts", func(h *historyVal, since time.Time, cats []string) int64 {
			return int64(h.h.DistinctAccounts(h.req.Store, "", since, cats, h.req.Payment.Account))
		}),
		cel.Function("denylisted", cel.MemberOverload("history_denylisted",
			[]*cel.Type{histT}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				h, ok := v.(*historyVal)
				if !ok {
					return types.NewErr("denylisted: not a history")
				}
				_, _, listed := denylisted(h.h, h.req.Payment.Account, h.req.At)
				return types.Bool(listed)
			}))),
	)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	env, err = env.Extend(cel.CustomTypeProvider(fieldReader{env.CELTypeProvider()}))
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	return &celEnv{env: env}, nil
}

// compile parses and type-checks an expression, bounds its worst-case cost
// and plans it; the CEL message is kept because it points at the offending
// column. categories is how many categories the policy declares, the most
// keys sale.quantities can have besides those of the cart's own lines.
func (e *celEnv) compile(src string, categories int) (cel.Program, error) {
	ast, iss := e.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be a boolean expression, not %s", ast.OutputType())
	}
	est, err := e.env.EstimateCost(ast, costBounds{categories: uint64(categories)})
	if err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	switch {
	case est.Max == math.MaxUint64:
		return nil, fmt.Errorf("worst-case cost is unbounded, limit %d (compare fields, not whole lines)", exprCostLimit)
	case est.Max > exprCostLimit:
		return nil, fmt.Errorf("worst-case cost %d exceeds the limit %d (a sale of %d lines, texts of %d bytes)",
			est.Max, exprCostLimit, MaxLines, MaxText)
	}
	prog, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return prog, nil
}

// costBounds tells CEL's cost estimator how big the inputs can get, so the
// estimate is a true upper bound for every sale Evaluate hands over.
type costBounds struct{ categories uint64 }

func (b costBounds) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	var sz cost.SizeEstimate
	switch {
	case n.Type().IsExactType(cel.StringType):
		sz = cost.RangedSizeEstimate(0, MaxText)
	case len(path) == 2 && path[0] == "sale" && path[1] == "lines":
		sz = cost.RangedSizeEstimate(0, MaxLines)
	case len(path) == 2 && path[0] == "sale" && (path[1] == "quantities" || path[1] == "amounts"):
		sz = cost.RangedSizeEstimate(0, b.categories+MaxLines)
	default:
		return nil
	}
	return &sz
}

func (costBounds) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	if strings.HasPrefix(overloadID, "history_") {
		return cost.NewCallEstimate(cost.FixedCostEstimate(historyCallCost), nil)
	}
	return nil
}

// beyondBounds says why a sale is beyond what expr rules were costed for,
// or "" when it is within.
func beyondBounds(req *Request) string {
	if len(req.Lines) > MaxLines {
		return fmt.Sprintf("sale has %d lines, expressions are bounded for %d", len(req.Lines), MaxLines)
	}
	pm := &req.Payment
	for _, s := range [...]string{req.SaleID, req.Store, req.Register, pm.Kind, pm.Issuer, pm.Account, pm.DeviceID} {
		if len(s) > MaxText {
			return fmt.Sprintf("a sale or token text of %d bytes, expressions are bounded for %d", len(s), MaxText)
		}
	}
	for i := range req.Lines {
		if l := &req.Lines[i]; len(l.JAN) > MaxText || len(l.Category) > MaxText {
			return fmt.Sprintf("lines[%d] has a text over %d bytes", i, MaxText)
		}
	}
	return ""
}

var celPosRE = regexp.MustCompile(`^(\d+:\d+): (.*)$`)

// oneLine folds CEL's multi-line message (with its source excerpt and caret)
// so each problem stays on one "path: reason" line.
func oneLine(s string) string {
	s = strings.TrimPrefix(s, "ERROR: <input>:")
	lines := strings.Split(s, "\n")
	var keep []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "|") {
			continue
		}
		t = strings.TrimPrefix(t, "ERROR: <input>:")
		if m := celPosRE.FindStringSubmatch(t); m != nil {
			t = m[2] + " (at " + m[1] + ")"
		}
		keep = append(keep, t)
	}
	return strings.Join(keep, "; ")
}

// celVars resolves the three variables without building a map per sale,
// and fills sale and token only when an expression first reads them: an
// expression that short-circuits on a token claim never pays for the cart.
// One celVars serves one Evaluate at a time; it lives in the pooled
// evaluation, so a sale costs no allocations once the pool is warm (its
// cart and maps are reused).
type celVars struct {
	p       *Policy
	req     *Request // the evaluation's copy
	sale    celSale
	token   celToken
	history historyVal
	hasSale bool
	hasTok  bool
	// beyond says why the sale is outside the bounds expressions were
	// costed for at load; expr rules then fire without running.
	beyond string
}

func (a *celVars) ResolveName(name string) (any, bool) {
	switch name {
	case "sale":
		if !a.hasSale {
			a.fillSale()
		}
		return &a.sale, true
	case "token":
		if !a.hasTok {
			pm := &a.req.Payment
			a.token = celToken{
				Kind: pm.Kind, Issuer: pm.Issuer, Account: pm.Account, DeviceID: pm.DeviceID,
				DeviceSince: pm.DeviceSince, AccountSince: pm.AccountSince, TopUpAt: pm.TopUpAt,
				TopUpAmount: pm.TopUpAmount, ForeignLogin: pm.ForeignLogin, ATC: int64(pm.ATC),
			}
			a.hasTok = true
		}
		return &a.token, true
	case "history":
		return &a.history, true
	}
	return nil, false
}

func (a *celVars) Parent() interpreter.Activation { return nil }

// begin prepares the expression inputs of one sale.
func (a *celVars) begin(p *Policy, req *Request, hist History) {
	a.p = p
	a.req = req
	a.history = historyVal{h: hist, req: req}
	a.beyond = beyondBounds(req)
}

// reset drops what the sale referenced so a pooled celVars keeps no
// request, history or policy alive; it keeps the cart's and maps' storage.
func (a *celVars) reset() {
	clear(a.sale.Lines)
	lines, qs, as := a.sale.Lines[:0], a.sale.Quantities, a.sale.Amounts
	*a = celVars{}
	a.sale = celSale{Lines: lines, Quantities: qs, Amounts: as}
}

func (a *celVars) fillSale() {
	p, req, s := a.p, a.req, &a.sale
	lines, qs, as := s.Lines[:0], s.Quantities, s.Amounts
	if qs == nil {
		qs = make(map[string]int64, len(p.labels))
		as = make(map[string]int64, len(p.labels))
	}
	clear(qs)
	clear(as)
	*s = celSale{ID: req.SaleID, Store: req.Store, Register: req.Register, At: req.At, Offline: req.Offline,
		Quantities: qs, Amounts: as}
	// Every category is present (0 when absent) so sale.quantities['x']
	// never fails at run time, which would fire the rule (fail closed).
	for c := range p.labels {
		qs[c] = 0
		as[c] = 0
	}
	for i := range req.Lines {
		l := &req.Lines[i]
		cat, units := p.lineInfo(l)
		amt := int64(l.Quantity) * l.UnitPrice
		cv, ok := p.catVals[cat]
		if !ok {
			cv = types.String(cat) // a category the caller named and the policy does not declare
		}
		lines = append(lines, celLine{JAN: l.JAN, Category: cat, Quantity: int64(l.Quantity), UnitPrice: l.UnitPrice, Amount: amt, Units: int64(units * l.Quantity), category: cv})
		s.Amount += amt
		s.Quantity += int64(l.Quantity)
		qs[cat] += int64(l.Quantity)
		as[cat] += amt
	}
	s.Lines = lines
	s.list.s = s
	a.hasSale = true
}
