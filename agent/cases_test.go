package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
)

// The fraud team's verdicts reach the till: a confirmed case denylists
// its account at the register; a false positive allowlists the account,
// so the rule marked `unless: allowlisted` no longer stops it, until the
// entry expires at the sale's time.
func TestCaseVerdictsReachTheRegister(t *testing.T) {
	b, auth := embedtest.Start(t, "hq", "S001/R1")
	hqYAML := "hq:\n  broker: " + b.URL() + "\n  passwordFile: " + auth.PasswordFile("S001/R1") + "\n  maxReconnect: 500ms\n"
	f := newFixture(t)
	// The example policy with its carton cap excused for allowlisted
	// accounts.
	pol, err := os.ReadFile(f.path("policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	excused := strings.Replace(string(pol), "    categories: [tobacco-carton]\n    maxQuantity: 2\n",
		"    categories: [tobacco-carton]\n    maxQuantity: 2\n    unless: allowlisted\n", 1)
	if excused == string(pol) {
		t.Fatal("example policy has no carton cap to excuse")
	}
	f.write("policy.yaml", []byte(excused))

	hqStore, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hqStore.Close() })
	svc, err := hq.New(hq.Config{MQTT: hqMQTT(auth, b.URL()), Store: hqStore, Signer: f.hqKey, SignerAlg: "EdDSA", SignerKID: "hq1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)

	// The register's clock can be moved ahead; tokens are minted for it.
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	r := start(t, f.config(hqYAML), agent.Options{Now: clock})
	mint := func(account string) string {
		return f.mint(account, func(c *claims) {
			c.IssuedAt, c.ExpiresAt = clock().Add(-time.Second), clock().Add(5*time.Minute)
		})
	}
	waitFor(t, "HQ link", func() bool {
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		return st.HQ.Connected
	})
	post := func(path, body string, want int) []byte {
		t.Helper()
		resp, err := http.Post(api.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
		return b
	}
	// caseFor waits for the register's alert about account at HQ and
	// opens (twice: once) a case with it, as a chain rule would.
	caseFor := func(account string) string {
		t.Helper()
		var alert event.Event
		waitFor(t, "HQ to store the alert of "+account, func() bool {
			evs, err := hqStore.Events(context.Background(), store.Query{Account: account, Types: []event.Type{event.Alert}})
			if err != nil || len(evs) == 0 {
				return false
			}
			alert = evs[0]
			return true
		})
		id, err := svc.Cases().OpenOrExtend(context.Background(), account, "S001", alert)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := svc.Cases().OpenOrExtend(context.Background(), account, "S001", alert); err != nil || again != id {
			t.Fatalf("the same alert again: case %s, %v; want %s", again, err, id)
		}
		return id
	}

	// A crew account: stopped by the carton cap, confirmed as fraud.
	if res, _ := r.decide(t, mint("crew-1"), line(carton, 3)); !slices.Contains(fired(res), "carton-cap") {
		t.Fatalf("crew sale fired %v", fired(res))
	}
	crewCase := caseFor("crew-1")
	post("/v1/cases/"+crewCase+"/confirm", `{"note": "same crew as S002, CCTV"}`, http.StatusOK)
	post("/v1/cases/"+crewCase+"/confirm", `{"note": "again"}`, http.StatusConflict)
	waitFor(t, "the confirmed account to be refused at the register", func() bool {
		res, _ := r.decide(t, mint("crew-1"), line(onigiri, 1))
		return res.Outcome == policy.Deny && slices.Contains(fired(res), "denylist")
	})

	// A bulk buyer: stopped once, found legitimate.
	if res, _ := r.decide(t, mint("bulk-buyer"), line(carton, 3)); !slices.Contains(fired(res), "carton-cap") {
		t.Fatalf("bulk sale fired %v", fired(res))
	}
	bulkCase := caseFor("bulk-buyer")
	post("/v1/cases/"+bulkCase+"/false-positive", `{"note": "passed an ID check", "allowFor": "48h", "store": "S014"}`, http.StatusOK)
	waitFor(t, "the allow entry to excuse the carton cap", func() bool {
		res, _ := r.decide(t, mint("bulk-buyer"), line(carton, 3))
		return !slices.Contains(fired(res), "carton-cap")
	})
	// Others are still capped.
	if res, _ := r.decide(t, mint("someone"), line(carton, 3)); !slices.Contains(fired(res), "carton-cap") {
		t.Fatalf("an account not on the allowlist was excused: %v", fired(res))
	}
	// Past the entry's expiry, by the sale's time, the cap holds again.
	ahead.Store(int64(49 * time.Hour))
	if res, _ := r.decide(t, mint("bulk-buyer"), line(carton, 3)); !slices.Contains(fired(res), "carton-cap") {
		t.Fatalf("an expired allow entry still excuses: %v", fired(res))
	}

	// The verdicts are the labels, and the allowlist names the case.
	resp, err := http.Get(api.URL + "/v1/cases/labels")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("labels:\n%s", body)
	}
	var bulk, crew map[string]string
	json.Unmarshal(lines[0], &bulk)
	json.Unmarshal(lines[1], &crew)
	if bulk["account"] != "bulk-buyer" || bulk["label"] != "legit" || bulk["case"] != bulkCase ||
		crew["account"] != "crew-1" || crew["label"] != "fraud" || crew["case"] != crewCase {
		t.Fatalf("labels:\n%s", body)
	}
	if _, err := time.Parse(time.RFC3339, crew["at"]); err != nil {
		t.Fatalf("label time: %v", err)
	}
	d, err := svc.Cases().Case(context.Background(), crewCase)
	if err != nil {
		t.Fatal(err)
	}
	if last := d.History[len(d.History)-1]; last.To != store.CaseConfirmedFraud || !strings.HasPrefix(last.By, "local") || last.Note != "same crew as S002, CCTV" {
		t.Fatalf("history %+v", d.History)
	}
}
