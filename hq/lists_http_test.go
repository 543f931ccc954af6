package hq

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/sale"
)

type listPage struct {
	Seq     uint64
	Entries []listEntry
	Next    string
}

type auditPage struct {
	Changes []listChange
	Next    string
}

func decodeAs[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return v
}

// The Lists page's API: each entry says who added it, when, why and until
// when; changes need the admin role and a reason, the mover is the
// caller; the audit trail pages newest first and names the callers.
func TestListsAPI(t *testing.T) {
	auth, admin, reader := tokens(t)
	f := startWith(t, auth)
	api := f.http.URL
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		says                            string
	}{
		{"deny by a reader", "POST", "/v1/denylist", reader, `{"add":["crew-1"],"reason":"x"}`, 403, ""},
		{"deny without a reason", "POST", "/v1/denylist", admin, `{"add":["crew-1"],"reason":" "}`, 400, "reason: required"},
		{"deny with two expiries", "POST", "/v1/denylist", admin, `{"add":["crew-1"],"reason":"x","denyFor":"1h","expires":"2099-01-01T00:00:00Z"}`, 400, "denyFor"},
		{"deny until the past", "POST", "/v1/denylist", admin, `{"add":["crew-1"],"reason":"x","expires":"2001-01-01T00:00:00Z"}`, 400, "in the past"},
		{"deny", "POST", "/v1/denylist", admin, `{"add":["crew-1","crew-2"],"reason":"CCTV at S001","denyFor":"24h"}`, 200, `"seq": 1`},
		{"deny for good", "POST", "/v1/denylist", admin, `{"add":["acct-x"],"reason":"stolen card"}`, 200, `"seq": 2`},
		{"undeny", "POST", "/v1/denylist", admin, `{"remove":["crew-2"],"reason":"paid back"}`, 200, `"seq": 3`},
		{"allow by a reader", "POST", "/v1/allowlist", reader, `{"add":["bulk-1"],"reason":"x","allowFor":"1h"}`, 403, ""},
		{"allow without an expiry", "POST", "/v1/allowlist", admin, `{"add":["bulk-1"],"reason":"ID check"}`, 400, "required with add"},
		{"allow too long", "POST", "/v1/allowlist", admin, `{"add":["bulk-1"],"reason":"ID check","allowFor":"9000h"}`, 400, "is not in the next"},
		{"allow a bad account", "POST", "/v1/allowlist", admin, `{"add":[""],"reason":"ID check","allowFor":"1h"}`, 400, "empty account"},
		{"allow", "POST", "/v1/allowlist", admin, `{"add":["bulk-1","bulk-2"],"reason":"ID check at S014","allowFor":"48h"}`, 200, `"seq": 1`},
		{"unallow", "POST", "/v1/allowlist", admin, `{"remove":["bulk-2"],"reason":"not the same person"}`, 200, `"seq": 2`},
		{"list without a token", "GET", "/v1/denylist", "", "", 401, ""},
		{"bad limit", "GET", "/v1/denylist?limit=5000", reader, "", 400, "limit"},
		{"bad list", "GET", "/v1/lists/audit?list=greylist", reader, "", 400, "list"},
		{"bad cursor", "GET", "/v1/lists/audit?cursor=%21%21", reader, "", 400, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, api+tc.path, tc.token, tc.body)
			if code != tc.want || !strings.Contains(body, tc.says) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.want, tc.says)
			}
		})
	}
	get := func(path string) string {
		t.Helper()
		code, body := call(t, "GET", api+path, reader, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return body
	}
	deny := decodeAs[listPage](t, get("/v1/denylist"))
	if deny.Seq != 3 || len(deny.Entries) != 2 || deny.Entries[0].Account != "acct-x" || deny.Entries[1].Account != "crew-1" || deny.Next != "" {
		t.Fatalf("denylist %+v", deny)
	}
	x, crew := deny.Entries[0], deny.Entries[1]
	if x.By != "fraud-desk (token)" || x.Why != "stolen card" || x.Seq != 2 || !x.ExpiresAt.IsZero() || time.Since(x.Added) > time.Minute {
		t.Fatalf("entry %+v", x)
	}
	if crew.Why != "CCTV at S001" || crew.Reason != "CCTV at S001" || crew.Seq != 1 || crew.ExpiresAt.Sub(crew.Added) < 23*time.Hour {
		t.Fatalf("entry with an expiry %+v", crew)
	}
	// The expiry reached the registers' copy of the list too.
	if d, err := f.st.DenylistDetails(t.Context()); err != nil || !d["crew-1"].ExpiresAt.Equal(crew.ExpiresAt) {
		t.Fatalf("details %+v %v", d, err)
	}
	page := decodeAs[listPage](t, get("/v1/denylist?account=crew&limit=1"))
	if len(page.Entries) != 1 || page.Entries[0].Account != "crew-1" || page.Next != "crew-1" {
		t.Fatalf("search %+v", page)
	}
	if page = decodeAs[listPage](t, get("/v1/denylist?account=crew&after=crew-1")); len(page.Entries) != 0 || page.Next != "" {
		t.Fatalf("search, page 2 %+v", page)
	}
	allow := decodeAs[listPage](t, get("/v1/allowlist"))
	if len(allow.Entries) != 1 || allow.Entries[0].Account != "bulk-1" || allow.Entries[0].By != "fraud-desk (token)" ||
		allow.Entries[0].Why != "ID check at S014" || allow.Entries[0].ExpiresAt.Sub(allow.Entries[0].Added) < 47*time.Hour {
		t.Fatalf("allowlist %+v", allow)
	}

	// The audit trail of the denylist, newest first, one change a page.
	var reasons []string
	cursor := ""
	for range 5 {
		a := decodeAs[auditPage](t, get("/v1/lists/audit?list=denylist&limit=1&cursor="+url.QueryEscape(cursor)))
		for _, c := range a.Changes {
			if c.By != "fraud-desk (token)" || c.List != "denylist" {
				t.Fatalf("change %+v", c)
			}
			reasons = append(reasons, c.Reason)
		}
		if cursor = a.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(reasons, []string{"paid back", "stolen card", "CCTV at S001"}) {
		t.Fatalf("audit %v", reasons)
	}
	// The allowlist's changes, once HQ records them as events.
	if al := decodeAs[auditPage](t, get("/v1/lists/audit?list=allowlist")); len(al.Changes) > 0 {
		if len(al.Changes) != 2 || al.Changes[0].List != "allowlist" || al.Changes[0].Reason != "not the same person" ||
			al.Changes[1].By != "fraud-desk (token)" || !slices.Equal(al.Changes[1].Add, []string{"bulk-1", "bulk-2"}) {
			t.Fatalf("allowlist audit %+v", al)
		}
		if both := decodeAs[auditPage](t, get("/v1/lists/audit?account=bulk-2")); len(both.Changes) != 2 {
			t.Fatalf("audit of bulk-2 %+v", both)
		}
	}
	a := decodeAs[auditPage](t, get("/v1/lists/audit?account=crew-2"))
	if len(a.Changes) != 2 || !slices.Equal(a.Changes[0].Remove, []string{"crew-2"}) || a.Changes[1].Seq != 1 {
		t.Fatalf("audit of crew-2 %+v", a)
	}
}

// A case's events: its alerts a page at a time with their reasons in both
// languages, and the sales they are about — a register's alert's own, and
// those a chain rule's alert names — one row per sale.
func TestCaseEventsAPI(t *testing.T) {
	auth, _, reader := tokens(t)
	f := startWith(t, auth)
	at := time.Now().UTC().Truncate(time.Second)
	sell := func(st string, seq uint64, typ event.Type, out sale.Outcome, rules ...sale.Fired) event.Event {
		id := event.ID(st, "r1", "e1", seq)
		saleID := "sale-" + st
		return event.Event{ID: id, Seq: seq, Type: typ, Store: st, Register: "r1", At: at.Add(time.Duration(seq) * time.Second), SaleID: saleID,
			Request: &policy.Request{SaleID: saleID, Store: st, Register: "r1", At: at, Payment: policy.Payment{Kind: "pg1", Account: "crew-1"},
				Lines: []policy.Line{{JAN: "4901234000100", Category: "tobacco-carton", Quantity: 3, UnitPrice: 6000}}},
			Decision: &policy.Decision{Outcome: out, Policy: policy.PolicyRef{Name: "p", Version: 1}, Rules: rules}}
	}
	cap := sale.Fired{ID: "carton-cap", Action: "deny", Mode: "enforce", Reason: "tobacco-carton 3 > limit 2",
		Reasons: []sale.Reason{{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Unit: sale.UnitItems, Category: sale.Names{ID: "tobacco-carton", JA: "たばこカートン", EN: "tobacco cartons"}}}}
	d1 := sell("S001", 1, event.Decision, sale.Deny, cap)
	a1 := sell("S001", 2, event.Alert, sale.Deny, cap)
	d2 := sell("S002", 3, event.Decision, sale.Allow)
	chain := event.Event{ID: event.ID(event.HQStore, event.HQChain, "account_stores.x", 1), Seq: 1, Type: event.Alert,
		Store: event.HQStore, Register: event.HQChain, At: at.Add(4 * time.Second),
		Chain: &event.ChainInfo{Rule: "account_stores", Kind: "account_stores", Mode: "enforce", Reason: "crew-1 paid at 2 stores in 30m",
			Account: "crew-1", Stores: []string{"S001", "S002"}, Events: []string{d2.ID, d1.ID, "S009/r1/e1/99"}}}
	if _, err := f.st.SaveEvents(t.Context(), []event.Event{d1, a1, d2, chain}); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, a := range []event.Event{a1, chain} {
		var err error
		if id, err = f.svc.Cases().OpenOrExtend(t.Context(), "crew-1", "", a); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := call(t, "GET", f.http.URL+"/v1/cases/"+id+"/events", "", ""); code != 401 {
		t.Fatalf("without a token: %d %s", code, body)
	}
	if code, body := call(t, "GET", f.http.URL+"/v1/cases/404/events", reader, ""); code != 404 {
		t.Fatalf("missing case: %d %s", code, body)
	}
	type page struct {
		Alerts []caseAlert
		Sales  []caseSale
		Next   string
	}
	code, body := call(t, "GET", f.http.URL+"/v1/cases/"+id+"/events?limit=1", reader, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	p := decodeAs[page](t, body)
	want := reason.Decision(reason.Japanese, *a1.Decision)
	if len(p.Alerts) != 1 || p.Alerts[0].ID != a1.ID || p.Alerts[0].Text == nil || !slices.Equal(p.Alerts[0].Text.JA, want) || !strings.Contains(want[0], "上限") {
		t.Fatalf("page 1 alerts %+v, want text %v", p.Alerts, want)
	}
	if len(p.Sales) != 1 || p.Sales[0].Event != a1.ID || p.Sales[0].Total != 18000 || p.Sales[0].Items != 3 || p.Sales[0].Outcome != "deny" || p.Next == "" {
		t.Fatalf("page 1 sales %+v next %q", p.Sales, p.Next)
	}
	code, body = call(t, "GET", f.http.URL+"/v1/cases/"+id+"/events?limit=1&cursor="+url.QueryEscape(p.Next), reader, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	p = decodeAs[page](t, body)
	if len(p.Alerts) != 1 || p.Alerts[0].ID != chain.ID || p.Alerts[0].Text == nil || !strings.Contains(p.Alerts[0].Text.EN[0], "2 stores") {
		t.Fatalf("page 2 alerts %+v", p.Alerts)
	}
	// The chain alert names S001's sale (its decision) and S002's; the
	// one it names that HQ never stored is left out.
	if len(p.Sales) != 2 || p.Sales[0].Store != "S001" || p.Sales[0].Event != d1.ID || p.Sales[1].Store != "S002" || p.Sales[1].Outcome != "allow" ||
		!slices.Equal(p.Sales[1].Alerts, []string{chain.ID}) {
		t.Fatalf("page 2 sales %+v", p.Sales)
	}
	if p = decodeAs[page](t, call2(t, f.http.URL+"/v1/cases/"+id+"/events?limit=1&cursor="+url.QueryEscape(p.Next), reader)); len(p.Alerts) != 0 || p.Next != "" {
		t.Fatalf("page 3 %+v", p)
	}
}

func call2(t *testing.T, u, token string) string {
	t.Helper()
	code, body := call(t, "GET", u, token, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	return body
}
