package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// fieldsRequest is a sale whose every field an expression can read has a
// distinct value, so a getter reading the wrong field is caught.
func fieldsRequest() Request {
	return Request{
		SaleID: "sale-1", Store: "S1", Register: "R1", At: t0, Offline: true,
		Lines: []Line{onigiri(3), {JAN: "4901234000100", Quantity: 2, UnitPrice: 6000}, {JAN: "4999999999992", Category: "gift", Quantity: 1, UnitPrice: 1000}},
		Payment: Payment{
			Kind: TokenPG1, Issuer: "iss", Account: "acct", DeviceID: "dev",
			DeviceSince: t0.Add(-time.Hour), AccountSince: t0.Add(-48 * time.Hour), TopUpAt: t0.Add(-time.Minute),
			TopUpAmount: 90000, ForeignLogin: true, ATC: 300,
		},
	}
}

// TestExprReadsEveryField: what an expression reads is what the request
// holds, field by field, through the hand-written getters.
func TestExprReadsEveryField(t *testing.T) {
	exprs := []string{
		"sale.id == 'sale-1' && sale.store == 'S1' && sale.register == 'R1'",
		"sale.at == timestamp('2026-07-04T06:00:00Z') && sale.offline",
		"sale.amount == 600 + 12000 + 1000 && sale.quantity == 6",
		"sale.quantities['food'] == 3 && sale.quantities['tobacco-carton'] == 2 && sale.quantities['tobacco'] == 0 && sale.quantities['gift'] == 1",
		"sale.amounts['food'] == 600 && sale.amounts['tobacco-carton'] == 12000",
		"sale.lines.size() == 3 && sale.lines[1].jan == '4901234000100' && sale.lines[1].category == 'tobacco-carton'",
		"sale.lines[1].quantity == 2 && sale.lines[1].unitPrice == 6000 && sale.lines[1].amount == 12000 && sale.lines[1].units == 20",
		"sale.lines[2].category == 'gift' && sale.lines[0].units == 3",
		"sale.lines.map(l, l.amount) == [600, 12000, 1000]",
		"sale.lines.filter(l, l.category.startsWith('tobacco')).size() == 1",
		"sale.lines.all(l, l.quantity > 0) && !sale.lines.exists(l, l.unitPrice > 6000)",
		"(sale.lines + sale.lines).size() == 6 && (sale.lines + [sale.lines[0]]).size() == 4",
		"sale.lines.exists_one(l, l.jan == '4999999999992')",
		"token.kind == 'pg1' && token.issuer == 'iss' && token.account == 'acct' && token.deviceId == 'dev'",
		"sale.at - token.deviceSince == duration('1h') && sale.at - token.accountSince == duration('48h') && sale.at - token.topUpAt == duration('1m')",
		"token.topUpAmount == 90000 && token.foreignLogin && token.atc == 300",
		"type(sale.lines) == list && type(sale.lines[0]) == policy.celLine",
	}
	for _, src := range exprs {
		t.Run(src, func(t *testing.T) {
			p := testPolicy(t, fmt.Sprintf("{id: r, kind: expr, action: review, expr: %q, reason: true}", src))
			d := Evaluate(p, fieldsRequest(), nil)
			if f, ok := findFired(d, "r"); !ok || f.Reason != "true" {
				t.Errorf("expression is not true: %+v", d.Rules)
			}
		})
	}
}

// TestLineListDirect covers what expressions cannot reach, because whole
// line comparisons have no cost bound and are refused at load.
func TestLineListDirect(t *testing.T) {
	p := testPolicy(t, `{id: r, kind: expr, action: review, expr: "true"}`)
	req := fieldsRequest()
	var a celVars
	a.begin(p, &req, emptyHistory{})
	defer a.reset()
	a.fillSale()
	ll := &a.sale.list
	first := ll.Get(types.Int(0))
	if ll.Contains(first) != types.True || ll.Contains(types.String("x")) != types.False {
		t.Error("Contains")
	}
	if ll.Equal(ll) != types.True || ll.Equal(types.NewDynamicList(types.DefaultTypeAdapter, []int{1, 2, 3})) != types.False {
		t.Error("Equal")
	}
	if _, ok := ll.Get(types.Int(3)).(*types.Err); !ok {
		t.Error("Get past the end is not an error")
	}
	it, n := ll.Iterator(), 0
	for it.HasNext() == types.True {
		if it.Next().Equal(ll.Get(types.Int(n))) != types.True {
			t.Errorf("iterator line %d", n)
		}
		n++
	}
	if n != 3 {
		t.Errorf("iterator gave %d lines, want 3", n)
	}
	native, err := ll.ConvertToNative(nil)
	if err == nil {
		t.Errorf("converted to a nil type: %v", native)
	}
}

// TestPooledVarsDoNotLeak: the pooled expression inputs carry nothing from
// one sale into the next, also with many sales decided at once.
func TestPooledVarsDoNotLeak(t *testing.T) {
	p := testPolicy(t, `{id: r, kind: expr, action: deny, expr: "sale.lines.exists(l, l.category == 'tobacco-carton') || sale.quantities['tobacco-carton'] > 0 || sale.lines.size() > 1 || token.topUpAmount > 0", reason: carton}`)
	carton := Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{cartons(5), onigiri(1)},
		Payment: Payment{Kind: TokenPG1, Account: "a", TopUpAmount: 50000}}
	food := Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{onigiri(1)}, Payment: pay("b")}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				req, want := carton, Deny
				if (i+g)%2 == 0 {
					req, want = food, Allow
				}
				if d := Evaluate(p, req, nil); d.Outcome != want {
					errs <- fmt.Sprintf("sale %d of goroutine %d: %s, want %s (%v)", i, g, d.Outcome, want, d.Rules)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// worstRequest is the sale the load-time cost bound assumes: MaxLines
// lines, each of its own category, and every text MaxText bytes long;
// nothing in it matches, so comprehensions walk all of it.
func worstRequest() Request {
	long := func(c string) string { return strings.Repeat(c, MaxText) }
	lines := make([]Line, MaxLines)
	for i := range lines {
		lines[i] = Line{JAN: long("7"), Category: fmt.Sprintf("%0*d", MaxText, i), Quantity: 1, UnitPrice: 1000}
	}
	return Request{SaleID: long("s"), Store: long("t"), Register: long("r"), At: t0, Lines: lines,
		Payment: Payment{Kind: long("k"), Issuer: long("i"), Account: long("a"), DeviceID: long("d"), TopUpAmount: 100000, TopUpAt: t0}}
}

// TestCostBoundHolds: for expressions the loader accepts, the cost CEL
// actually spends on the worst sale stays within the bound computed at
// load. This is what lets Evaluate run without a cost tracker.
func TestCostBoundHolds(t *testing.T) {
	env, err := newCELEnv()
	if err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t, `{id: r, kind: expr, action: review, expr: "true"}`)
	var past []PastSale
	for i := 0; i < 50; i++ {
		past = append(past, pastSale(fmt.Sprint("acct-", i), time.Duration(i)*time.Minute, cartons(1)))
	}
	hist := NewMemoryHistory(past, nil)
	exprs := []string{
		loadExample(t).Rules[len(loadExample(t).Rules)-1].Expr,
		"sale.lines.exists(l, l.category == 'tobacco-carton')",
		"sale.lines.exists(l, l.jan.matches('^49[0-9]{11}$'))",
		"sale.lines.filter(l, l.jan.startsWith('49') || l.category.contains('tob')).size() > 3",
		"sale.lines.map(l, l.category + l.jan).exists(s, s.size() > 1000)",
		"sale.lines.exists(l, l.category in ['tobacco', 'tobacco-carton', 'e-cigarette'] && l.units > 10)",
		"sale.quantities.exists(k, k.endsWith('carton') && sale.quantities[k] > 2)",
		"sale.id + sale.store + sale.register + token.kind + token.issuer + token.account + token.deviceId == 'x'",
		"history.accountSales(duration('1h'), ['tobacco-carton']) + history.registerAccounts(duration('30m'), []) > 100 || history.denylisted()",
		"history.storeAccounts(duration('30m'), ['tobacco-carton']) + history.accountAmount(duration('24h'), []) > 100",
		"[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, a + b > 0))",
	}
	for _, src := range exprs {
		t.Run(src, func(t *testing.T) {
			ast, iss := env.env.Compile(src)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			est, err := env.env.EstimateCost(ast, costBounds{categories: uint64(len(p.labels))})
			if err != nil {
				t.Fatal(err)
			}
			if est.Max > exprCostLimit {
				t.Fatalf("loader would refuse it: cost %d", est.Max)
			}
			prog, err := env.env.Program(ast, cel.CostTracking(nil), cel.EvalOptions(cel.OptOptimize))
			if err != nil {
				t.Fatal(err)
			}
			req := worstRequest()
			vars := &celVars{}
			vars.begin(p, &req, hist)
			defer vars.reset()
			if vars.beyond != "" {
				t.Fatalf("worst request is beyond the bound: %s", vars.beyond)
			}
			_, det, err := prog.Eval(vars)
			if err != nil {
				t.Fatal(err)
			}
			if got := *det.ActualCost(); got > est.Max {
				t.Errorf("actual cost %d > estimated worst case %d", got, est.Max)
			} else {
				t.Logf("actual %d <= estimated %d", got, est.Max)
			}
		})
	}
}
