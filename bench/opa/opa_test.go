package opa

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/token"
)

const testdata = "../../policy/testdata"

// loadPolicy is the example policy as it was before scores (unscored.yaml):
// the Rego translation in this package is of that one.
func loadPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.LoadFile(filepath.Join(testdata, "unscored.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func shinjuku(t testing.TB) policy.HistoryFile {
	var h policy.HistoryFile
	readJSON(t, filepath.Join(testdata, "history/shinjuku.json"), &h)
	return h
}

// posguardFired is Evaluate's decision in OPA's shape.
func posguardFired(d policy.Decision) Decision {
	out := Decision{Outcome: d.Outcome}
	for _, f := range d.Rules {
		out.Fired = append(out.Fired, Fired{ID: f.ID, Action: f.Action, Mode: f.Mode})
	}
	SortFired(out.Fired)
	return out
}

// cases are the golden incident requests of policy/testdata plus variants
// that reach the rules those do not (offline, unknown token, denylist,
// units, account age), and the quiet benchmark sale.
func cases(t testing.TB) map[string]policy.Request {
	t.Helper()
	out := map[string]policy.Request{}
	files, _ := filepath.Glob(filepath.Join(testdata, "requests/*.json"))
	if len(files) < 6 {
		t.Fatalf("only %d golden requests", len(files))
	}
	for _, f := range files {
		var r policy.Request
		readJSON(t, f, &r)
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = r
	}
	base := out["onigiri-700"]
	add := func(name string, change func(r *policy.Request)) {
		r := base
		r.Lines = append([]policy.Line(nil), base.Lines...)
		change(&r)
		out[name] = r
	}
	add("offline-big", func(r *policy.Request) {
		r.Offline = true
		r.Lines = append(r.Lines, policy.Line{JAN: "4901234000315", Category: "e-cigarette", Quantity: 3, UnitPrice: 5800})
	})
	add("unknown-token", func(r *policy.Request) { r.Payment.Kind = "unknown" })
	add("denylisted", func(r *policy.Request) { r.Payment.Account = "acct-flagged" })
	add("young-account", func(r *policy.Request) {
		r.Payment.AccountSince = r.At.Add(-time.Hour)
		r.Lines = append(r.Lines, policy.Line{JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600})
	})
	add("no-category", func(r *policy.Request) {
		r.Lines = []policy.Line{{JAN: "4901234000100", Quantity: 3, UnitPrice: 6000}}
	})
	out["bench-quiet"] = benchRequest()
	return out
}

// TestSameOutcomes: OPA on the Rego rules and posguard's Evaluate reach the
// same outcome and fire the same rules (id, action, mode) on every case.
func TestSameOutcomes(t *testing.T) {
	ctx := context.Background()
	p := loadPolicy(t)
	h := shinjuku(t)
	deny := append(h.Denylist, "acct-flagged")
	hist := policy.NewMemoryHistory(h.Sales, deny)
	ev, err := New(ctx, p, h.Sales, deny)
	if err != nil {
		t.Fatal(err)
	}
	nonAllow := 0
	for name, req := range cases(t) {
		t.Run(name, func(t *testing.T) {
			want := posguardFired(policy.Evaluate(p, req, hist))
			got, err := ev.Decide(ctx, &req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("OPA %+v\nposguard %+v", got, want)
			}
			if want.Outcome != policy.Allow {
				nonAllow++
			}
		})
	}
	if nonAllow < 6 {
		t.Errorf("only %d cases are not allowed: the comparison would not exercise the rules", nonAllow)
	}
}

func benchRequest() policy.Request {
	at := time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC)
	lines := []policy.Line{}
	for i := range 19 {
		if i%2 == 0 {
			lines = append(lines, policy.Line{JAN: "4901234200012", Category: "food", Quantity: 1, UnitPrice: 200})
		} else {
			lines = append(lines, policy.Line{JAN: "4901234200029", Category: "drink", Quantity: 1, UnitPrice: 300})
		}
	}
	lines = append(lines, policy.Line{JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600})
	return policy.Request{SaleID: "b", Store: "S001", Register: "R1", At: at, Lines: lines, Payment: policy.Payment{
		Kind: policy.TokenPG1, Account: "bench", DeviceSince: at.AddDate(-1, 0, 0), AccountSince: at.AddDate(-2, 0, 0),
	}}
}

// benchSetup is a warm register (500 sales over the last day, like
// policy's BenchmarkEvaluate) and a PG1 token minted with the test issuer
// key for the sale.
type benchSetup struct {
	p     *policy.Policy
	sales []policy.PastSale
	hist  *policy.MemoryHistory
	ver   *token.Verifier
	text  []byte
}

func setup(b *testing.B, req policy.Request) *benchSetup {
	p := loadPolicy(b)
	var sales []policy.PastSale
	regs := []string{"R1", "R2", "R3"}
	for i := range 500 {
		acct := "acct-" + string(rune('A'+i%50))
		if i%25 == 0 {
			acct = "bench"
		}
		s := policy.PastSale{At: req.At.Add(-time.Duration(i) * 3 * time.Minute), Account: acct, Store: "S001", Register: regs[i%3],
			Lines: []policy.Line{{JAN: "4901234200012", Category: "food", Quantity: 2, UnitPrice: 200}}}
		if i%10 == 5 && acct != "bench" {
			s.Lines = append(s.Lines, policy.Line{JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600})
		}
		sales = append(sales, s)
	}
	key, _, err := keyfile.Load(filepath.Join(testdata, "test-issuer-ed25519.key.pem"))
	if err != nil {
		b.Fatal(err)
	}
	pm := req.Payment
	text, err := token.Mint(key, "EdDSA", "test-2026", token.Claims{
		Issuer: "posguard-wallet-test", Subject: pm.Account, IssuedAt: req.At.Add(-10 * time.Second), ExpiresAt: req.At.Add(5 * time.Minute),
		DeviceID: []byte{1, 2, 3, 4}, DeviceSince: pm.DeviceSince, AccountSince: pm.AccountSince, TopUpAt: pm.TopUpAt,
		TopUpAmount: pm.TopUpAmount, ForeignLogin: pm.ForeignLogin,
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchSetup{p: p, sales: sales, hist: policy.NewMemoryHistory(sales, nil), ver: token.NewVerifier(&p.Tokens, []byte("bench-account-key")), text: []byte(text)}
}

// verify is the token half of a decision: decode and verify the PG1 token
// and build the request's payment from it.
func (s *benchSetup) verify(b *testing.B, req *policy.Request) {
	tok, err := s.ver.Verify(s.text, req.At, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Payment = tok.Payment()
}

func benchCases(b *testing.B) map[string]policy.Request {
	var fire policy.Request
	readJSON(b, filepath.Join(testdata, "requests/topup-90400.json"), &fire)
	return map[string]policy.Request{"quiet": benchRequest(), "firing": fire}
}

// BenchmarkDecide is the decision latency: PG1 token verify, then the
// rules, with posguard's Evaluate and with OPA on the same rules in Rego.
// The token verification is the same code on both sides.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"quiet", "firing"} {
		req := benchCases(b)[name]
		s := setup(b, req)
		ev, err := New(ctx, s.p, s.sales, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/posguard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := req
				s.verify(b, &r)
				if d := policy.Evaluate(s.p, r, s.hist); d.Outcome == "" {
					b.Fatal("no outcome")
				}
			}
		})
		b.Run(name+"/opa", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := req
				s.verify(b, &r)
				if d, err := ev.Decide(ctx, &r); err != nil || d.Outcome == "" {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRules is the rules alone, without the token: Evaluate against
// OPA's prepared query (input conversion included).
func BenchmarkRules(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"quiet", "firing"} {
		req := benchCases(b)[name]
		s := setup(b, req)
		ev, err := New(ctx, s.p, s.sales, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/posguard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				policy.Evaluate(s.p, req, s.hist)
			}
		})
		b.Run(name+"/opa", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ev.Decide(ctx, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
