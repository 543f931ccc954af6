package chain

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy/sale"
)

var t0 = time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)

// sale is one decision event: account acct at store st, minutes after t0.
type ev struct {
	store, acct string
	min         float64
	out         sale.Outcome
	token       string
	topUpAgo    time.Duration // fresh top-up this long before the sale (0: none)
	amount      int64
}

var seq uint64

func (e ev) event() event.Event {
	seq++
	at := t0.Add(time.Duration(e.min * float64(time.Minute)))
	out := e.out
	if out == "" {
		out = sale.Allow
	}
	id := fmt.Sprintf("sale-%d", seq)
	req := &sale.Request{SaleID: id, Store: e.store, Register: "R1", At: at,
		Payment: sale.Payment{Kind: "pg1", Issuer: "pay", Account: e.acct, TokenID: e.token}}
	if e.topUpAgo > 0 {
		req.Payment.TopUpAt = at.Add(-e.topUpAgo)
	}
	if e.amount > 0 {
		req.Lines = []sale.Line{{JAN: "4901234000100", Quantity: 1, UnitPrice: e.amount}}
	}
	return event.Event{ID: event.ID(e.store, "R1", "e1", seq), Seq: seq, Type: event.Decision, Store: e.store, Register: "R1",
		At: at, SaleID: id, Request: req, Decision: &sale.Decision{Outcome: out, Policy: sale.PolicyRef{Name: "p", Version: 1}}}
}

func backends(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("bolt", func(t *testing.T) {
		st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := store.OpenPostgres(context.Background(), testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(t, st)
	})
}

func loadRule(t *testing.T, rule string) *Document {
	t.Helper()
	d, err := Load([]byte("apiVersion: posguard/v1\nkind: ChainRules\nmetadata: {name: t}\nrules:\n" + rule))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestKinds feeds each kind a stream, one event at a time (as HQ's ingest
// does with small batches), and checks which events fire: at exactly the
// threshold, at the window's boundary and one step past it.
func TestKinds(t *testing.T) {
	cases := []struct {
		name, rule string
		events     []ev
		fire       []int    // indexes of the events that fire
		reason     string   // of the last firing
		stores     []string // of the last firing
	}{
		{
			name: "account_stores at the threshold",
			rule: "- {id: hop, kind: account_stores, minStores: 3, window: 30m}",
			events: []ev{{store: "S1", acct: "a"}, {store: "S1", acct: "a", min: 1}, {store: "S2", acct: "a", min: 2},
				{store: "S2", acct: "b", min: 3}, {store: "S3", acct: "a", min: 4}, {store: "S3", acct: "a", min: 5}, {store: "S4", acct: "a", min: 6}},
			fire: []int{4, 6}, reason: "account_stores: account paid at 4 stores within 30m0s", stores: []string{"S1", "S2", "S3", "S4"},
		},
		{
			name:   "account_stores window boundary inclusive",
			rule:   "- {id: hop, kind: account_stores, minStores: 2, window: 30m}",
			events: []ev{{store: "S1", acct: "a"}, {store: "S2", acct: "a", min: 30}},
			fire:   []int{1}, stores: []string{"S1", "S2"},
		},
		{
			name:   "account_stores past the window",
			rule:   "- {id: hop, kind: account_stores, minStores: 2, window: 30m}",
			events: []ev{{store: "S1", acct: "a"}, {store: "S2", acct: "a", min: 30.001}},
		},
		{
			name:   "account_stores refused sales do not count",
			rule:   "- {id: hop, kind: account_stores, minStores: 2, window: 30m}",
			events: []ev{{store: "S1", acct: "a", out: sale.Deny}, {store: "S2", acct: "a", min: 1}},
		},
		{
			name: "refused_then_elsewhere",
			rule: "- {id: walk, kind: refused_then_elsewhere, window: 1h}",
			events: []ev{{store: "S1", acct: "a", out: sale.Review}, {store: "S1", acct: "a", min: 1}, {store: "S2", acct: "a", min: 2},
				{store: "S2", acct: "a", min: 3}, {store: "S3", acct: "a", min: 60}, {store: "S4", acct: "b", min: 3}},
			fire: []int{2, 4}, reason: "refused_then_elsewhere: refused at S1, paid at S3 within 1h0m0s", stores: []string{"S1", "S3"},
		},
		{
			name:   "account_stores out of time order",
			rule:   "- {id: hop, kind: account_stores, minStores: 3, window: 30m}",
			events: []ev{{store: "S1", acct: "a"}, {store: "S3", acct: "a", min: 30}, {store: "S2", acct: "a", min: 10}, {store: "S2", acct: "a", min: 11}},
			fire:   []int{2}, reason: "account_stores: account paid at 3 stores within 30m0s", stores: []string{"S1", "S2", "S3"},
		},
		{
			name:   "refused_then_elsewhere, the refusal arriving late",
			rule:   "- {id: walk, kind: refused_then_elsewhere, window: 1h}",
			events: []ev{{store: "S2", acct: "a", min: 10}, {store: "S1", acct: "a", out: sale.Deny}},
			fire:   []int{1}, reason: "refused_then_elsewhere: refused at S1, paid at S2 within 1h0m0s", stores: []string{"S1", "S2"},
		},
		{
			name:   "refused_then_elsewhere past the window",
			rule:   "- {id: walk, kind: refused_then_elsewhere, window: 1h}",
			events: []ev{{store: "S1", acct: "a", out: sale.Deny}, {store: "S2", acct: "a", min: 61}},
		},
		{
			name: "store_new_accounts",
			rule: "- {id: fresh, kind: store_new_accounts, minAccounts: 3, freshFor: 1h, window: 10m}",
			events: []ev{{store: "S1", acct: "a", topUpAgo: time.Hour}, {store: "S1", acct: "b", min: 1, topUpAgo: time.Minute},
				{store: "S1", acct: "c", min: 2}, {store: "S1", acct: "b", min: 3, topUpAgo: time.Minute},
				{store: "S2", acct: "d", min: 4, topUpAgo: time.Minute}, {store: "S1", acct: "e", min: 10, topUpAgo: 61 * time.Minute},
				{store: "S1", acct: "f", min: 10, topUpAgo: time.Minute}},
			fire: []int{6}, reason: "store_new_accounts: 3 accounts with fresh top-ups or devices paid at S1 within 10m0s", stores: []string{"S1"},
		},
		{
			name:   "token_reuse",
			rule:   "- {id: tok, kind: token_reuse, window: 24h}",
			events: []ev{{store: "S1", acct: "a", token: "t1"}, {store: "S1", acct: "a", token: "t1", out: sale.Deny}, {store: "S2", acct: "a", token: "t1", out: sale.Deny}, {store: "S2", acct: "b", token: "t2"}},
			fire:   []int{2}, reason: "token_reuse: token t1 seen at S1, S2", stores: []string{"S1", "S2"},
		},
		{
			name: "expr over the chain counters",
			rule: "- {id: big, kind: expr, window: 1h, expr: 'chain.accountStores >= 2 && event.amount >= 50000', reason: big and hopping}",
			events: []ev{{store: "S1", acct: "a", amount: 60000}, {store: "S2", acct: "a", min: 1, amount: 100},
				{store: "S2", acct: "a", min: 2, amount: 50000}},
			fire: []int{2}, reason: "expr: big and hopping", stores: []string{"S1", "S2"},
		},
	}
	backends(t, func(t *testing.T, st store.Store) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// Rule ids get the case's number: one store serves every case.
				rule := strings.Replace(tc.rule, "id: ", fmt.Sprintf("id: c%d-", i), 1)
				e := NewEngine(loadRule(t, rule), st)
				var fired []int
				var last Firing
				for j, x := range tc.events {
					f, failed, err := e.Evaluate(context.Background(), []event.Event{x.event()})
					if err != nil || len(failed) > 0 {
						t.Fatal(err, failed)
					}
					if len(f) > 0 {
						fired = append(fired, j)
						last = f[0]
					}
				}
				if !slices.Equal(fired, tc.fire) {
					t.Fatalf("fired at %v, want %v", fired, tc.fire)
				}
				if tc.reason != "" && last.Reason != tc.reason {
					t.Errorf("reason %q, want %q", last.Reason, tc.reason)
				}
				if tc.stores != nil && !slices.Equal(last.Stores, tc.stores) {
					t.Errorf("stores %v, want %v", last.Stores, tc.stores)
				}
			})
		}
	})
}

// An event evaluated twice (redelivered, or handed to a second HQ
// instance) fires once.
func TestEvaluateOnce(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		e := NewEngine(loadRule(t, "- {id: hop, kind: account_stores, minStores: 2, window: 30m, actions: [denylist], denylistFor: 1h}"), st)
		evs := []event.Event{ev{store: "S1", acct: "a"}.event(), ev{store: "S2", acct: "a", min: 1}.event()}
		f, _, err := e.Evaluate(context.Background(), evs)
		if err != nil || len(f) != 1 {
			t.Fatalf("first: %v %v", f, err)
		}
		a := f[0].Alert()
		if err := a.Validate(); err != nil {
			t.Fatalf("alert: %v", err)
		}
		if a.Chain.Account != "a" || !slices.Equal(a.Chain.Events, []string{evs[1].ID, evs[0].ID}) || a.Chain.Actions[0] != "denylist" {
			t.Errorf("alert chain = %+v", a.Chain)
		}
		if d := f[0].Detail(t0); d.Rule != "hop" || !d.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("detail = %+v", d)
		}
		f, _, err = e.Evaluate(context.Background(), evs)
		if err != nil || len(f) != 0 {
			t.Fatalf("again: %v %v", f, err)
		}
	})
}
