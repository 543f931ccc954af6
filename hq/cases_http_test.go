package hq

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
)

// The case API: reading needs the read role, every move the analyst role;
// the mover recorded is the token's name, never one the body declares;
// errors say what is wrong with the right status.
func TestCaseAPI(t *testing.T) {
	auth, admin, reader := tokens(t)
	f := startWith(t, auth)
	url := f.http.URL
	code, body := call(t, "POST", url+"/v1/cases", reader, `{"account":"acct-a","store":"s1","note":"looks like the crew"}`)
	if code != 403 {
		t.Fatalf("open with a read token: %d %s", code, body)
	}
	code, body = call(t, "POST", url+"/v1/cases", admin, `{"account":"acct-a","store":"s1","note":"looks like the crew","by":"mallory"}`)
	if code != 400 || !strings.Contains(body, `unknown field \"by\"`) {
		t.Fatalf("a self-declared name: %d %s", code, body)
	}
	code, body = call(t, "POST", url+"/v1/cases", admin, `{"account":"acct-a","store":"s1","note":"looks like the crew"}`)
	if code != 201 {
		t.Fatalf("open: %d %s", code, body)
	}
	var opened struct{ ID string }
	json.Unmarshal([]byte(body), &opened)
	if code, body = call(t, "POST", url+"/v1/cases", admin, `{"account":"acct-a","note":"again"}`); code != 200 || !strings.Contains(body, `"opened": false`) {
		t.Fatalf("open again: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		says                            string
	}{
		{"list without a token", "GET", "/v1/cases", "", "", 401, ""},
		{"list", "GET", "/v1/cases?state=open&store=s1", reader, "", 200, `"acct-a"`},
		{"list bad state", "GET", "/v1/cases?state=maybe", reader, "", 400, "state"},
		{"list bad limit", "GET", "/v1/cases?limit=0", reader, "", 400, "limit"},
		{"one", "GET", "/v1/cases/" + opened.ID, reader, "", 200, `"history"`},
		{"missing", "GET", "/v1/cases/77", reader, "", 404, "no such case"},
		{"confirm with a read token", "POST", "/v1/cases/" + opened.ID + "/confirm", reader, `{"note":"x"}`, 403, ""},
		{"confirm without a note", "POST", "/v1/cases/" + opened.ID + "/confirm", admin, `{"note":""}`, 400, "note: required"},
		{"false positive, expiry too far", "POST", "/v1/cases/" + opened.ID + "/false-positive", admin, `{"note":"ok","allowFor":"9000h"}`, 400, "not in the next"},
		{"false positive, both expiries", "POST", "/v1/cases/" + opened.ID + "/false-positive", admin, `{"note":"ok","allowFor":"1h","expires":"2099-01-01T00:00:00Z"}`, 400, "allowFor"},
		{"confirm", "POST", "/v1/cases/" + opened.ID + "/confirm", admin, `{"note":"CCTV at s1"}`, 200, `"listSeq": 1`},
		{"confirm again", "POST", "/v1/cases/" + opened.ID + "/confirm", admin, `{"note":"CCTV at s1"}`, 409, "cannot become"},
		{"false positive after confirm", "POST", "/v1/cases/" + opened.ID + "/false-positive", admin, `{"note":"ok"}`, 409, "cannot become"},
		{"close", "POST", "/v1/cases/" + opened.ID + "/close", admin, `{"note":"done"}`, 200, `"closed"`},
		{"allowlist", "GET", "/v1/allowlist", reader, "", 200, `"entries": []`},
		{"labels", "GET", "/v1/cases/labels", reader, "", 200, `{"account":"acct-a","label":"fraud","case":"` + opened.ID + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, url+tc.path, tc.token, tc.body)
			if code != tc.want || !strings.Contains(body, tc.says) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.want, tc.says)
			}
		})
	}
	d, err := f.svc.Cases().Case(t.Context(), opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != 3 || d.History[1].By != "fraud-desk (token)" || d.History[1].Note != "CCTV at s1" || d.State != store.CaseClosed {
		t.Fatalf("history %+v", d.History)
	}
	// The confirmation denylisted the account, by the caller, for the note.
	if v, accounts, err := f.st.Denylist(t.Context()); err != nil || v.Seq != 1 || len(accounts) != 1 || accounts[0] != "acct-a" {
		t.Fatalf("denylist %+v %v %v", v, accounts, err)
	}
	evs, err := f.st.Events(t.Context(), store.Query{Types: []event.Type{event.DenylistChanged}})
	if err != nil || len(evs) != 1 || evs[0].Denylist.By != "fraud-desk (token)" || evs[0].Denylist.Reason != "CCTV at s1" {
		t.Fatalf("denylist record %+v %v", evs, err)
	}
}
