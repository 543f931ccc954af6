package policy

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Limits on expr rules. A register decides in well under a millisecond, so
// an expression gets a bounded budget: the cost limit stops runaway
// comprehensions at run time, the size limits stop pathological source.
const (
	exprCostLimit      = 10_000
	exprMaxLength      = 4096
	exprRecursionLimit = 32
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
}

type celLine struct {
	JAN       string `cel:"jan"`
	Category  string `cel:"category"`
	Quantity  int64  `cel:"quantity"`
	UnitPrice int64  `cel:"unitPrice"`
	Amount    int64  `cel:"amount"`
	Units     int64  `cel:"units"`
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
// functions query the History for the sale's account and register, so an
// expression cannot ask about other accounts.
type historyVal struct {
	h   History
	req *Request
}

const historyTypeName = "posguard.History"

func (h historyVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("history cannot leave the expression")
}
func (h historyVal) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("history cannot be converted")
}
func (h historyVal) Equal(ref.Val) ref.Val { return types.False }
func (h historyVal) Type() ref.Type        { return types.NewOpaqueType(historyTypeName) }
func (h historyVal) Value() any            { return h }

type celEnv struct{ env *cel.Env }

func newCELEnv() (*celEnv, error) {
	histT := cel.OpaqueType(historyTypeName)
	strList := cel.ListType(cel.StringType)
	histInt := func(name string, f func(h historyVal, since time.Time, cats []string) int64) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("history_"+name,
			[]*cel.Type{histT, cel.DurationType, strList}, cel.IntType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				h, ok := args[0].(historyVal)
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
		histInt("accountSales", func(h historyVal, since time.Time, cats []string) int64 {
			return int64(h.h.AccountSales(h.req.Payment.Account, since, cats).Sales)
		}),
		histInt("accountAmount", func(h historyVal, since time.Time, cats []string) int64 {
			return h.h.AccountSales(h.req.Payment.Account, since, cats).Amount
		}),
		histInt("accountQuantity", func(h historyVal, since time.Time, cats []string) int64 {
			return int64(h.h.AccountSales(h.req.Payment.Account, since, cats).Quantity)
		}),
		histInt("registerAccounts", func(h historyVal, since time.Time, cats []string) int64 {
			return int64(h.h.RegisterAccounts(h.req.Store, h.req.Register, since, cats, h.req.Payment.Account))
		}),
		cel.Function("denylisted", cel.MemberOverload("history_denylisted",
			[]*cel.Type{histT}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				h, ok := v.(historyVal)
				if !ok {
					return types.NewErr("denylisted: not a history")
				}
				return types.Bool(h.req.Payment.Account != "" && h.h.Denylisted(h.req.Payment.Account))
			}))),
	)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	return &celEnv{env: env}, nil
}

// compile parses and type-checks an expression and plans it with the cost
// limit; the CEL message is kept because it points at the offending column.
func (e *celEnv) compile(src string) (cel.Program, error) {
	ast, iss := e.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be a boolean expression, not %s", ast.OutputType())
	}
	prog, err := e.env.Program(ast, cel.CostLimit(exprCostLimit))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return prog, nil
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
// and builds sale and token only when an expression first reads them: an
// expression that short-circuits on a token claim never pays for the cart.
type celVars struct {
	p       *Policy
	req     *Request
	sale    *celSale
	token   *celToken
	history historyVal
}

func (a *celVars) ResolveName(name string) (any, bool) {
	switch name {
	case "sale":
		if a.sale == nil {
			a.sale = newCELSale(a.p, a.req)
		}
		return a.sale, true
	case "token":
		if a.token == nil {
			pm := &a.req.Payment
			a.token = &celToken{
				Kind: pm.Kind, Issuer: pm.Issuer, Account: pm.Account, DeviceID: pm.DeviceID,
				DeviceSince: pm.DeviceSince, AccountSince: pm.AccountSince, TopUpAt: pm.TopUpAt,
				TopUpAmount: pm.TopUpAmount, ForeignLogin: pm.ForeignLogin, ATC: int64(pm.ATC),
			}
		}
		return a.token, true
	case "history":
		return a.history, true
	}
	return nil, false
}

func (a *celVars) Parent() interpreter.Activation { return nil }

// newCELVars prepares the expression inputs of one Evaluate; it is only
// called for policies that have expr rules.
func newCELVars(p *Policy, req *Request, hist History) *celVars {
	return &celVars{p: p, req: req, history: historyVal{h: hist, req: req}}
}

func newCELSale(p *Policy, req *Request) *celSale {
	s := &celSale{
		ID: req.SaleID, Store: req.Store, Register: req.Register, At: req.At, Offline: req.Offline,
		Lines:      make([]celLine, len(req.Lines)),
		Quantities: make(map[string]int64, len(p.labels)),
		Amounts:    make(map[string]int64, len(p.labels)),
	}
	// Every category is present (0 when absent) so sale.quantities['x']
	// never fails at run time, which would fire the rule (fail closed).
	for c := range p.labels {
		s.Quantities[c] = 0
		s.Amounts[c] = 0
	}
	for i, l := range req.Lines {
		cat, units := p.lineInfo(&l)
		amt := int64(l.Quantity) * l.UnitPrice
		s.Lines[i] = celLine{JAN: l.JAN, Category: cat, Quantity: int64(l.Quantity), UnitPrice: l.UnitPrice, Amount: amt, Units: int64(units * l.Quantity)}
		s.Amount += amt
		s.Quantity += int64(l.Quantity)
		s.Quantities[cat] += int64(l.Quantity)
		s.Amounts[cat] += amt
	}
	return s
}
