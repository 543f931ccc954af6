package hq

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
)

// tokens makes a tokens file with an admin and a reader.
func tokens(t *testing.T) (auth *apiauth.Tokens, admin, reader string) {
	t.Helper()
	admin, adminLine, err := apiauth.NewToken("fraud-desk", apiauth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	reader, readerLine, err := apiauth.NewToken("dashboard", apiauth.Read)
	if err != nil {
		t.Fatal(err)
	}
	auth, err = apiauth.Parse(strings.NewReader(adminLine + "\n" + readerLine + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return auth, admin, reader
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The attack: anyone who reaches HQ's API adds or removes denylist entries,
// which HQ signs and pushes to every register, and reads every event. With
// tokens, every endpoint but /healthz needs one, and changes need admin.
func TestAPINeedsAuthentication(t *testing.T) {
	auth, admin, reader := tokens(t)
	f := startWith(t, auth)
	change := `{"add":["acct-stolen"],"reason":"reported stolen by the account holder"}`
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"health is open", "GET", "/healthz", "", "", 200},
		{"events without a token", "GET", "/v1/events", "", "", 401},
		{"fleet without a token", "GET", "/v1/fleet", "", "", 401},
		{"alerts with a bad token", "GET", "/v1/alerts", "pgt_guessed", "", 401},
		{"denylist status without a token", "GET", "/v1/denylist/status", "", "", 401},
		{"change without a token", "POST", "/v1/denylist", "", change, 401},
		{"change with a read token", "POST", "/v1/denylist", reader, change, 403},
		{"events with a read token", "GET", "/v1/events", reader, "", 200},
		{"fleet with an admin token", "GET", "/v1/fleet", admin, "", 200},
		{"change with an admin token", "POST", "/v1/denylist", admin, change, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, f.http.URL+tt.path, tt.token, tt.body)
			if code != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}
	if v, _, err := f.st.Denylist(t.Context()); err != nil || v.Seq != 1 {
		t.Fatalf("denylist at %+v (%v): want exactly the admin's one change", v, err)
	}
}

// Every change records who (the authenticated caller, never a name the
// caller declares), when and why, and /v1/events shows it.
func TestDenylistChangeIsRecorded(t *testing.T) {
	auth, admin, reader := tokens(t)
	f := startWith(t, auth)
	code, body := call(t, "POST", f.http.URL+"/v1/denylist", admin,
		`{"add":["acct-1","acct-2"],"remove":["acct-0"],"reason":"crew seen at S014, case 77","by":"someone else"}`)
	if code != http.StatusBadRequest {
		t.Fatalf("a self-declared author was accepted: %d %s", code, body)
	}
	code, body = call(t, "POST", f.http.URL+"/v1/denylist", admin, `{"add":["acct-1","acct-2"],"remove":["acct-0"],"reason":"crew seen at S014, case 77"}`)
	if code != 200 {
		t.Fatalf("change: %d %s", code, body)
	}
	code, body = call(t, "GET", f.http.URL+"/v1/events?type=denylist", reader, "")
	if code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	var evs []event.Event
	if err := json.Unmarshal([]byte(body), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Denylist == nil {
		t.Fatalf("denylist events = %s", body)
	}
	ev := evs[0]
	d := ev.Denylist
	if d.By != "fraud-desk (token)" || d.Reason != "crew seen at S014, case 77" || d.Seq != 1 ||
		strings.Join(d.Add, ",") != "acct-1,acct-2" || strings.Join(d.Remove, ",") != "acct-0" || ev.At.IsZero() {
		t.Errorf("recorded change = %+v at %v", d, ev.At)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("recorded event does not validate: %v", err)
	}
	v, _, _ := f.st.Denylist(t.Context())
	if d.Epoch != v.Epoch || ev.ID != event.ID(event.HQStore, event.HQDenylist, v.Epoch, 1) {
		t.Errorf("event %s of epoch %q, list is %+v", ev.ID, d.Epoch, v)
	}
}
