package hq

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/wire"
)

// The fraud team's metrics follow the cases and lists as they change:
// cases by state and the entries read from the store, the moves counted
// by the instance that made them, automatic denylist entries by rule.
func TestListMetrics(t *testing.T) {
	f := start(t)
	svc, reg, ctx := f.svc, f.reg, t.Context()
	names := []string{"posguard_hq_cases", "posguard_hq_case_moves_total", "posguard_hq_allowlist_entries",
		"posguard_hq_denylist_auto_entries", "posguard_hq_list_metrics_errors"}
	check := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
			t.Fatal(err)
		}
	}
	check(`
# HELP posguard_hq_cases Cases by state, in HQ's store.
# TYPE posguard_hq_cases gauge
posguard_hq_cases{state="closed"} 0
posguard_hq_cases{state="confirmed_fraud"} 0
posguard_hq_cases{state="false_positive"} 0
posguard_hq_cases{state="open"} 0
# HELP posguard_hq_allowlist_entries Accounts on the allowlist, in HQ's store.
# TYPE posguard_hq_allowlist_entries gauge
posguard_hq_allowlist_entries 0
# HELP posguard_hq_list_metrics_errors 1 when this scrape could not read cases or lists from the store (logged).
# TYPE posguard_hq_list_metrics_errors gauge
posguard_hq_list_metrics_errors 0
`)
	cs := svc.Cases()
	var ids []string
	for _, a := range []string{"acct-a", "acct-b", "acct-c"} {
		id, _, err := cs.Open(ctx, a, "s1", "analyst (token)", "looks like the crew")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := cs.Confirm(ctx, ids[0], "analyst (token)", "CCTV at s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.FalsePositive(ctx, ids[1], "analyst (token)", "ID check", time.Time{}, "s14"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Close(ctx, ids[1], "analyst (token)", "done"); err != nil {
		t.Fatal(err)
	}
	// Two accounts a chain rule denylisted, one a person did.
	exp := time.Now().Add(time.Hour)
	if _, err := svc.DenylistChange(ctx, store.ListChange{Add: []string{"acct-x", "acct-y"}, By: "chain:crew-hopping", Reason: "account_stores",
		Details: map[string]wire.ListDetail{"acct-x": {ExpiresAt: exp, Rule: "crew-hopping"}, "acct-y": {ExpiresAt: exp, Rule: "crew-hopping"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DenylistChange(ctx, store.ListChange{Add: []string{"acct-z"}, By: "ops (token)", Reason: "reported stolen"}); err != nil {
		t.Fatal(err)
	}
	check(`
# HELP posguard_hq_cases Cases by state, in HQ's store.
# TYPE posguard_hq_cases gauge
posguard_hq_cases{state="closed"} 1
posguard_hq_cases{state="confirmed_fraud"} 1
posguard_hq_cases{state="false_positive"} 0
posguard_hq_cases{state="open"} 1
# HELP posguard_hq_case_moves_total Cases this HQ instance opened (from "") or moved, by from and to state.
# TYPE posguard_hq_case_moves_total counter
posguard_hq_case_moves_total{from="",to="open"} 3
posguard_hq_case_moves_total{from="false_positive",to="closed"} 1
posguard_hq_case_moves_total{from="open",to="confirmed_fraud"} 1
posguard_hq_case_moves_total{from="open",to="false_positive"} 1
# HELP posguard_hq_allowlist_entries Accounts on the allowlist, in HQ's store.
# TYPE posguard_hq_allowlist_entries gauge
posguard_hq_allowlist_entries 1
# HELP posguard_hq_denylist_auto_entries Denylist entries HQ added itself, by the chain rule that added them (rule "case": a confirmed case).
# TYPE posguard_hq_denylist_auto_entries gauge
posguard_hq_denylist_auto_entries{rule="case"} 1
posguard_hq_denylist_auto_entries{rule="crew-hopping"} 2
# HELP posguard_hq_list_metrics_errors 1 when this scrape could not read cases or lists from the store (logged).
# TYPE posguard_hq_list_metrics_errors gauge
posguard_hq_list_metrics_errors 0
`)
}
