// Package opa evaluates the example policy's rules written in Rego with Open
// Policy Agent, so the benchmark can compare posguard's engine with OPA on
// the same requests and the same history. It lives in the bench module so
// OPA never enters the agent's dependencies.
package opa

import (
	"context"
	_ "embed"
	"fmt"
	"sort"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/posguard/posguard/policy"
)

//go:embed policy.rego
var module string

// Fired is one rule that fired, as OPA reports it.
type Fired struct {
	ID     string
	Action string
	Mode   string
}

// Decision is OPA's answer for one sale.
type Decision struct {
	Outcome policy.Outcome
	Fired   []Fired // sorted by id, then action
}

// Evaluator is a prepared OPA query over the Rego policy with a history
// loaded into OPA's store.
type Evaluator struct {
	pq rego.PreparedEvalQuery
	p  *policy.Policy // resolves empty line categories, as Evaluate does
}

// New prepares the query. The history goes into OPA's in-memory store as
// data, indexed by account and by register like policy.MemoryHistory, so
// OPA does not pay for converting it on every decision.
func New(ctx context.Context, p *policy.Policy, sales []policy.PastSale, denylist []string) (*Evaluator, error) {
	store := inmem.NewFromObject(historyData(sales, denylist))
	pq, err := rego.New(
		rego.Query("data.posguard.decision"),
		rego.Module("policy.rego", module),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare rego policy: %w", err)
	}
	return &Evaluator{pq: pq, p: p}, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (e *Evaluator) category(l policy.Line) string {
	if l.Category != "" {
		return l.Category
	}
	if it, ok := e.p.Item(l.JAN); ok {
		return it.Category
	}
	return "unknown"
}

// Input converts a request to the Rego input document. It is part of what
// an OPA-based agent would pay per decision, so the benchmark times it.
func (e *Evaluator) Input(req *policy.Request) map[string]any {
	lines := make([]any, len(req.Lines))
	for i, l := range req.Lines {
		lines[i] = map[string]any{"jan": l.JAN, "category": e.category(l), "quantity": l.Quantity, "unitPrice": l.UnitPrice}
	}
	pm := &req.Payment
	return map[string]any{
		"at": req.At.UnixNano(), "store": req.Store, "register": req.Register, "offline": req.Offline,
		"lines": lines,
		"payment": map[string]any{
			"kind": pm.Kind, "account": pm.Account, "invalid": pm.Invalid,
			"deviceSince": nanos(pm.DeviceSince), "accountSince": nanos(pm.AccountSince),
			"topUpAt": nanos(pm.TopUpAt), "topUpAmount": pm.TopUpAmount, "foreignLogin": pm.ForeignLogin,
		},
	}
}

// Decide evaluates one request.
func (e *Evaluator) Decide(ctx context.Context, req *policy.Request) (Decision, error) {
	rs, err := e.pq.Eval(ctx, rego.EvalInput(e.Input(req)))
	if err != nil {
		return Decision{}, fmt.Errorf("opa eval sale %s: %w", req.SaleID, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("opa eval sale %s: %d results, want 1", req.SaleID, len(rs))
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("opa eval sale %s: decision is %T", req.SaleID, rs[0].Expressions[0].Value)
	}
	var d Decision
	o, _ := m["outcome"].(string)
	d.Outcome = policy.Outcome(o)
	fired, _ := m["fired"].([]any)
	for _, f := range fired {
		fm, ok := f.(map[string]any)
		if !ok {
			return Decision{}, fmt.Errorf("opa eval sale %s: fired rule is %T", req.SaleID, f)
		}
		id, _ := fm["id"].(string)
		action, _ := fm["action"].(string)
		mode, _ := fm["mode"].(string)
		d.Fired = append(d.Fired, Fired{ID: id, Action: action, Mode: mode})
	}
	SortFired(d.Fired)
	return d, nil
}

// SortFired orders fired rules by id, then action, for comparison.
func SortFired(f []Fired) {
	sort.Slice(f, func(i, j int) bool {
		if f[i].ID != f[j].ID {
			return f[i].ID < f[j].ID
		}
		return f[i].Action < f[j].Action
	})
}

// historyData lays the history out as the Rego policy reads it: each sale
// with its lines folded per category, listed under its account and under
// its store and register.
func historyData(sales []policy.PastSale, denylist []string) map[string]any {
	accounts := map[string]any{}
	registers := map[string]any{}
	// Keep each list in time order, as MemoryHistory does.
	sorted := append([]policy.PastSale(nil), sales...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At.Before(sorted[j].At) })
	for _, s := range sorted {
		cats := map[string]any{}
		for _, l := range s.Lines {
			c := l.Category
			if c == "" {
				c = "unknown"
			}
			t, _ := cats[c].(map[string]any)
			if t == nil {
				t = map[string]any{"q": 0, "a": int64(0)}
				cats[c] = t
			}
			t["q"] = t["q"].(int) + l.Quantity
			t["a"] = t["a"].(int64) + int64(l.Quantity)*l.UnitPrice
		}
		entry := map[string]any{"at": s.At.UnixNano(), "account": s.Account, "cats": cats}
		if s.Account != "" {
			list, _ := accounts[s.Account].([]any)
			accounts[s.Account] = append(list, entry)
		}
		regs, _ := registers[s.Store].(map[string]any)
		if regs == nil {
			regs = map[string]any{}
			registers[s.Store] = regs
		}
		list, _ := regs[s.Register].([]any)
		regs[s.Register] = append(list, entry)
	}
	deny := map[string]any{}
	for _, a := range denylist {
		deny[a] = true
	}
	return map[string]any{
		"history":  map[string]any{"accounts": accounts, "registers": registers},
		"denylist": deny,
	}
}
