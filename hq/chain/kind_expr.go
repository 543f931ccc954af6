package chain

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/ext"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
)

// KindExpr fires when its CEL expression is true for a decision event,
// given the chain's counts for the event's account and store within the
// window:
//
//	event.id, .store, .register, .at, .account, .outcome (allow|review|deny),
//	.amount (yen), .tokenId, .topUpAt, .deviceSince
//	chain.accountStores  distinct stores the account paid at (this sale included)
//	chain.refusedStores  distinct stores that denied or held the account
//
// Counts are over the window holding the event with the most stores, and
// stop at 65 (store.MaxChainMembers others).
//
// The expression is type-checked and its worst-case cost bounded at load,
// as the policy's expr rules are; one that fails at run time does not fire
// (HQ's rules act after the sale, so failing closed would punish the
// account for the rule's own fault) and is logged.
const KindExpr = "expr"

// Bounds of expr rules, as in the policy.
const (
	exprCostLimit      = 10_000
	exprMaxLength      = 4096
	exprRecursionLimit = 32
)

// celEvent is the "event" variable.
type celEvent struct {
	ID          string    `cel:"id"`
	Store       string    `cel:"store"`
	Register    string    `cel:"register"`
	At          time.Time `cel:"at"`
	Account     string    `cel:"account"`
	Outcome     string    `cel:"outcome"`
	Amount      int64     `cel:"amount"`
	TokenID     string    `cel:"tokenId"`
	TopUpAt     time.Time `cel:"topUpAt"`
	DeviceSince time.Time `cel:"deviceSince"`
}

// celChain is the "chain" variable.
type celChain struct {
	AccountStores int64 `cel:"accountStores"`
	RefusedStores int64 `cel:"refusedStores"`
}

// Keys of the facts an expr rule records, one namespace each.
const (
	exprPaid    = "paid\x1f"    // account → store
	exprRefused = "refused\x1f" // account → store
)

type exprProgram = cel.Program

type exprEnv struct{ env *cel.Env }

func newExprEnv() (*exprEnv, error) {
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeOf(celEvent{}), reflect.TypeOf(celChain{}), ext.ParseStructTags(true)),
		cel.Variable("event", cel.ObjectType("chain.celEvent")),
		cel.Variable("chain", cel.ObjectType("chain.celChain")),
		cel.ParserExpressionSizeLimit(exprMaxLength),
		cel.ParserRecursionLimit(exprRecursionLimit),
	)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	return &exprEnv{env: env}, nil
}

func (e *exprEnv) compile(src string) (cel.Program, error) {
	ast, iss := e.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(strings.Join(strings.Fields(strings.ReplaceAll(iss.Err().Error(), "ERROR: <input>:", "")), " "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be a boolean expression, not %s", ast.OutputType())
	}
	est, err := e.env.EstimateCost(ast, textBounds{})
	if err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	switch {
	case est.Max == math.MaxUint64:
		return nil, fmt.Errorf("worst-case cost is unbounded, limit %d", exprCostLimit)
	case est.Max > exprCostLimit:
		return nil, fmt.Errorf("worst-case cost %d exceeds the limit %d (texts of %d bytes)", est.Max, exprCostLimit, policy.MaxText)
	}
	return e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// textBounds tells the estimator every text is at most policy.MaxText
// bytes; events with longer texts are not run (beyondBounds).
type textBounds struct{}

func (textBounds) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) > 0 && n.Type().IsExactType(cel.StringType) {
		sz := cost.RangedSizeEstimate(0, policy.MaxText)
		return &sz
	}
	return nil
}

func (textBounds) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

var exprKind = ruleKind{
	fields: []string{"expr", "reason"},
	check: func(c *ruleCheck) {
		if c.r.Expr == "" {
			c.add("expr", "is required for expr")
			return
		}
		v := c.v
		if !v.envBuilt {
			v.envBuilt = true
			v.env, v.envErr = newExprEnv()
		}
		if v.envErr != nil {
			c.add("expr", "%v", v.envErr)
			return
		}
		prog, err := v.env.compile(c.r.Expr)
		if err != nil {
			c.add("expr", "%v", err)
			return
		}
		c.r.prog = prog
	},
	observe: func(r *Rule, ev *event.Event) []fact {
		req, d, ok := decision(ev)
		if !ok {
			return nil
		}
		if d.Outcome == "allow" {
			return []fact{{key: exprPaid + req.Payment.Account, member: ev.Store}}
		}
		return []fact{{key: exprRefused + req.Payment.Account, member: ev.Store}}
	},
	judge: judgeExpr,
}

func judgeExpr(r *Rule, ev *event.Event, facts []fact, seen []store.ChainSeen) *Firing {
	req, d := ev.Request, ev.Decision
	if why := beyondBounds(ev); why != "" {
		return &Firing{failed: fmt.Errorf("rule %s: expression not run on %s: %s", r.ID, ev.ID, why)}
	}
	var ch celChain
	w := r.Window.D()
	count := func(member string, s store.ChainSeen) ([]store.ChainHit, int64) {
		hits, _ := window(member, ev.At, w, s.Others, false)
		return hits, int64(len(hits)) + 1
	}
	var hits []store.ChainHit
	if d.Outcome == "allow" {
		hits, ch.AccountStores = count(ev.Store, seen[0])
	} else {
		hits, ch.RefusedStores = count(ev.Store, seen[0])
	}
	stores := append(members(hits), ev.Store)
	var amount int64
	for _, l := range req.Lines {
		amount += int64(l.Quantity) * l.UnitPrice
	}
	vars := map[string]any{
		"event": &celEvent{ID: ev.ID, Store: ev.Store, Register: ev.Register, At: ev.At, Account: req.Payment.Account,
			Outcome: string(d.Outcome), Amount: amount, TokenID: req.Payment.TokenID, TopUpAt: req.Payment.TopUpAt, DeviceSince: req.Payment.DeviceSince},
		"chain": &ch,
	}
	out, _, err := r.prog.Eval(vars)
	if err != nil {
		return &Firing{failed: fmt.Errorf("rule %s: expression failed on %s: %w", r.ID, ev.ID, err)}
	}
	if b, ok := out.Value().(bool); !ok || !b {
		return nil
	}
	reason := r.Reason
	if reason == "" {
		reason = "expression is true: " + r.Expr
	}
	acct := req.Payment.Account
	return &Firing{Account: acct, Accounts: []string{acct}, Stores: uniqueSorted(stores), Events: events(ev, hits),
		Reason: KindExpr + ": " + reason}
}

// beyondBounds says why an event's texts are longer than expressions were
// costed for ("" when within).
func beyondBounds(ev *event.Event) string {
	pm := &ev.Request.Payment
	for _, s := range [...]string{ev.ID, ev.Store, ev.Register, pm.Account, pm.TokenID} {
		if len(s) > policy.MaxText {
			return fmt.Sprintf("a text of %d bytes, expressions are bounded for %d", len(s), policy.MaxText)
		}
	}
	return ""
}
