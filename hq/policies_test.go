package hq

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// policyFixture is HQ with a policy verify key whose private half the
// test keeps, as the workstation that signs policies offline does.
type policyFixture struct {
	*fixture
	sign ed25519.PrivateKey // kid "pol-1", trusted by HQ
}

func startPolicies(t *testing.T, api *apiauth.Tokens, keys bool) *policyFixture {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	f := startConfigured(t, api, func(cfg *Config) {
		// The events of the report test are of 2019.
		cfg.PolicyReport = PolicyReportConfig{Window: time.Since(t0) + time.Hour}
		if keys {
			cfg.PolicyKeys = []bundle.TrustedKey{{KID: "pol-1", Alg: bundle.AlgEdDSA, Public: pub}}
		}
	})
	return &policyFixture{fixture: f, sign: priv}
}

// signedAt is when every policy of the tests is issued: two versions
// differ only in what a test changes.
var signedAt = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

// signed is chain-default as version v, valid from an hour ago, with
// tobacco's score limit at limit yen, signed by key as kid.
func signed(t *testing.T, key ed25519.PrivateKey, kid string, v int64, limit int) []byte {
	t.Helper()
	p, err := policy.LoadFile(filepath.Join("..", "policy", "testdata", "chain-default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Rules {
		if p.Rules[i].ID == "tobacco-over-50000" {
			m := int64(limit)
			p.Rules[i].MaxAmount = &m
		}
	}
	at := signedAt
	p.Metadata.Version, p.Metadata.IssuedAt, p.Metadata.ExpiresAt = v, at, at.Add(720*time.Hour)
	b, err := bundle.SignPolicy(key, bundle.AlgEdDSA, kid, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pushBody(b []byte, scope string) string {
	return fmt.Sprintf(`{"bundle":%q,"scope":%q}`, base64.StdEncoding.EncodeToString(b), scope)
}

// retained subscribes as a register to the policy topic of scope and
// returns the retained bundles it receives.
func retained(t *testing.T, f *fixture, scope string) chan []byte {
	t.Helper()
	got := make(chan []byte, 10)
	c, _ := register(t, f.auth, f.b.URL(), "s1", "r1")
	if tok := c.Subscribe(wire.PolicyTopic(scope), 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return got
}

func listPolicies(t *testing.T, url, token string) policyList {
	t.Helper()
	code, body := call(t, "GET", url+"/v1/policies", token, "")
	if code != 200 {
		t.Fatalf("GET /v1/policies: %d %s", code, body)
	}
	var l policyList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPolicyPushThroughHQ(t *testing.T) {
	auth, admin, reader := tokens(t)
	f := startPolicies(t, auth, true)
	url := f.http.URL
	v1, v2 := signed(t, f.sign, "pol-1", 1, 50000), signed(t, f.sign, "pol-1", 2, 60000)

	// A reader may not push.
	if code, body := call(t, "POST", url+"/v1/policies", reader, pushBody(v1, "all")); code != 403 {
		t.Fatalf("reader push: %d %s, want 403", code, body)
	}
	code, body := call(t, "POST", url+"/v1/policies", admin, pushBody(v1, "all"))
	if code != 201 || !strings.Contains(body, `"pushedBy": "fraud-desk (token)"`) || !strings.Contains(body, `"new": true`) {
		t.Fatalf("admin push v1: %d %s", code, body)
	}
	// Published retained, byte for byte: a register connecting now gets it.
	select {
	case got := <-retained(t, f.fixture, "all"):
		if !bytes.Equal(got, v1) {
			t.Fatal("the retained bundle is not the one pushed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained bundle on the policy topic")
	}
	if code, body := call(t, "POST", url+"/v1/policies", admin, pushBody(v2, "all")); code != 201 {
		t.Fatalf("admin push v2: %d %s", code, body)
	}
	l := listPolicies(t, url, reader)
	if len(l.Versions) != 2 || l.Versions[0].Version != 2 || l.Versions[1].Version != 1 || l.Next != 0 ||
		l.Versions[0].PushedBy != "fraud-desk (token)" || l.Versions[0].Source != store.PolicyViaHQ || l.Versions[0].KID != "pol-1" {
		t.Fatalf("list = %+v", l)
	}
	if len(l.VerifyKeys) != 1 || l.VerifyKeys[0] != "pol-1" {
		t.Errorf("verifyKeys = %v", l.VerifyKeys)
	}
	// HQ saw its own pushes come back on the retained topic: still one
	// record each, still the admin's.
	time.Sleep(200 * time.Millisecond)
	if l := listPolicies(t, url, reader); len(l.Versions) != 2 || l.Versions[1].PushedBy != "fraud-desk (token)" {
		t.Fatalf("after the echo: %+v", l)
	}

	code, body = call(t, "GET", url+"/v1/policies/1", reader, "")
	var doc struct {
		Document struct {
			Metadata policy.Metadata `json:"metadata"`
		} `json:"document"`
		YAML string `json:"yaml"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || doc.Document.Metadata.Version != 1 ||
		!strings.HasPrefix(doc.YAML, "apiVersion: posguard/v1\nkind: Policy\n") {
		t.Fatalf("GET v1: %d %v %.300s", code, err, body)
	}
	code, body = call(t, "GET", url+"/v1/policies/diff?from=1&to=2", reader, "")
	var d policyDiffAnswer
	json.Unmarshal([]byte(body), &d)
	for _, want := range []string{"--- chain-default v1\n+++ chain-default v2\n", "\n-  version: 1\n+  version: 2\n", "\n-    maxAmount: 50000\n+    maxAmount: 60000\n"} {
		if code != 200 || !strings.Contains(d.Diff, want) {
			t.Errorf("diff: %d, want %q in\n%s", code, want, d.Diff)
		}
	}

	for _, c := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"the same bundle to a store", pushBody(v1, "s1"), 200, `"new": false`},
		{"another bundle as v2", pushBody(signed(t, f.sign, "pol-1", 2, 70000), "all"), 409, "higher version"},
		{"an unknown key", pushBody(signed(t, ed25519.NewKeyFromSeed(make([]byte, 32)), "pol-9", 3, 50000), "all"), 400, "unknown_key"},
		{"a bad scope", pushBody(v2, "s/1"), 400, "scope"},
		{"no bundle", `{"scope":"all"}`, 400, "bundle"},
		{"not a bundle", `{"bundle":"aGVsbG8="}`, 400, "malformed"},
		{"an unknown field", `{"bundle":"aGVsbG8=","by":"mallory"}`, 400, "unknown field"},
	} {
		if code, body := call(t, "POST", url+"/v1/policies", admin, c.body); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.code, c.want)
		}
	}
	for path, want := range map[string]int{"/v1/policies/7": 404, "/v1/policies/x": 400, "/v1/policies/diff?from=1&to=9": 404,
		"/v1/policies?limit=0": 400, "/v1/policies/9/report": 404} {
		if code, body := call(t, "GET", url+path, reader, ""); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}

// Paging: limit and before walk the versions newest first.
func TestPolicyListPaging(t *testing.T) {
	f := startPolicies(t, nil, true)
	for v := int64(1); v <= 3; v++ {
		if code, body := call(t, "POST", f.http.URL+"/v1/policies", "", pushBody(signed(t, f.sign, "pol-1", v, 50000+int(v)), "all")); code != 201 {
			t.Fatalf("push v%d: %d %s", v, code, body)
		}
	}
	var got []int64
	next := ""
	for range 3 {
		_, body := call(t, "GET", f.http.URL+"/v1/policies?limit=2"+next, "", "")
		var l policyList
		json.Unmarshal([]byte(body), &l)
		for _, v := range l.Versions {
			got = append(got, v.Version)
		}
		if l.Next == 0 {
			break
		}
		next = fmt.Sprintf("&before=%d", l.Next)
	}
	if fmt.Sprint(got) != "[3 2 1]" {
		t.Errorf("pages gave %v, want [3 2 1]", got)
	}
}

// `posguard policy push` publishes straight to the broker: HQ records the
// version from the retained topic, with the signing key as who.
func TestPolicyPushedByCLIIsRecorded(t *testing.T) {
	f := startPolicies(t, nil, true)
	b := signed(t, f.sign, "pol-1", 5, 50000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mc := f.auth.MQTT(f.b.URL(), push.PushUsername)
	if _, err := push.Run(ctx, push.Options{MQTT: mc, Scope: "all", Bundle: b, Version: 5}); err != nil {
		t.Fatal(err)
	}
	// A bundle signed by a key HQ does not trust is not recorded.
	stranger := signed(t, ed25519.NewKeyFromSeed(make([]byte, 32)), "pol-9", 6, 50000)
	if _, err := push.Run(ctx, push.Options{MQTT: mc, Scope: "s1", Bundle: stranger, Version: 6}); err != nil {
		t.Fatal(err)
	}
	var l policyList
	waitFor(t, "the pushed version in the history", func() bool {
		l = listPolicies(t, f.http.URL, "")
		return len(l.Versions) > 0
	})
	time.Sleep(200 * time.Millisecond)
	l = listPolicies(t, f.http.URL, "")
	if len(l.Versions) != 1 || l.Versions[0].Version != 5 || l.Versions[0].PushedBy != "pol-1 (cli push)" ||
		l.Versions[0].Source != store.PolicyViaBroker || l.Versions[0].Scope != "all" {
		t.Fatalf("history = %+v", l.Versions)
	}
}

// Without a verify key HQ takes no policy: it could not tell a genuine
// one from a forged one.
func TestPolicyPushNeedsVerifyKey(t *testing.T) {
	f := startPolicies(t, nil, false)
	_, priv, _ := ed25519.GenerateKey(nil)
	if code, body := call(t, "POST", f.http.URL+"/v1/policies", "", pushBody(signed(t, priv, "pol-1", 1, 50000), "all")); code != 503 || !strings.Contains(body, "--policy-trusted-key") {
		t.Fatalf("push without keys: %d %s, want 503", code, body)
	}
	if l := listPolicies(t, f.http.URL, ""); len(l.VerifyKeys) != 0 || len(l.Versions) != 0 {
		t.Errorf("list = %+v", l)
	}
}

// tobaccoSale is a decision HQ stored: ¥60,000 of cartons, allowed then.
func tobaccoSale(seq uint64) event.Event {
	ev := decision("s1", "r1", seq, policy.Allow)
	ev.Request.Lines = []policy.Line{{JAN: "4901234567894", Category: "tobacco-carton", Quantity: 10, UnitPrice: 6000}}
	ev.Request.Payment.Account = fmt.Sprintf("acct-%d", seq)
	return ev
}

// The report replays the stored decisions through the version, as
// `policy test --html` does, and is made once per version.
func TestPolicyReport(t *testing.T) {
	f := startPolicies(t, nil, true)
	var evs []event.Event
	for seq := uint64(1); seq <= 20; seq++ {
		evs = append(evs, tobaccoSale(seq))
	}
	if _, err := f.st.SaveEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", f.http.URL+"/v1/policies", "", pushBody(signed(t, f.sign, "pol-1", 1, 50000), "all")); code != 201 {
		t.Fatalf("push: %d %s", code, body)
	}
	// While another report is being made this one waits its turn: the
	// page says so and reloads itself.
	c := f.svc.policies.reports
	c.run <- struct{}{}
	code, page := call(t, "GET", f.http.URL+"/v1/policies/1/report", "", "")
	if code != 202 || !strings.Contains(page, `data-state="queued"`) || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Fatalf("report while another runs: %d %s", code, page)
	}
	<-c.run
	var st ReportStatus
	waitFor(t, "the report", func() bool {
		_, body := call(t, "GET", f.http.URL+"/v1/policies/1/report?format=json", "", "")
		json.Unmarshal([]byte(body), &st)
		return st.State == reportDone || st.State == reportFailed
	})
	if st.State != reportDone || st.Sales != 20 || st.Read != 20 {
		t.Fatalf("report state = %+v, want done over 20 sales", st)
	}
	code, page = call(t, "GET", f.http.URL+"/v1/policies/1/report", "", "")
	// Every sale crosses the tobacco limit under v1: the rule's row counts 20.
	if code != 200 || !strings.Contains(page, "<html") || !strings.Contains(page, "chain-default") || !strings.Contains(page, "tobacco-over-50000") {
		t.Fatalf("report page: %d %.400s", code, page)
	}
	j1, _ := f.svc.report(context.Background(), 1)
	j2, _ := f.svc.report(context.Background(), 1)
	if j1 != j2 {
		t.Error("the report was made again within its TTL")
	}
}
