package event

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/policy"
)

func sampleRequest() *policy.Request {
	at := time.Date(2019, 7, 3, 14, 5, 0, 0, time.UTC)
	return &policy.Request{
		SaleID:   "s-0001",
		Store:    "shinjuku-01",
		Register: "r2",
		At:       at,
		Lines: []policy.Line{
			{JAN: "4901234567894", Category: "tobacco", Quantity: 5, UnitPrice: 5400},
			{JAN: "4909876543210", Category: "unknown", Quantity: 1, UnitPrice: 120},
		},
		Payment: policy.Payment{
			Kind: "pg1", Issuer: "7pay", Account: "acct-9f2c", TokenID: "c3a1f0e2b4d5a6c7",
			DeviceID: "ab12", DeviceSince: at.Add(-20 * time.Minute), AccountSince: at.Add(-400 * 24 * time.Hour),
			TopUpAt: at.Add(-40 * time.Minute), TopUpAmount: 90000, ForeignLogin: true,
		},
	}
}

func goldenEvents() map[string]Event {
	req := sampleRequest()
	dec := &policy.Decision{
		Outcome: policy.Deny,
		Policy:  policy.PolicyRef{Name: "chain-default", Version: 7},
		Rules: []policy.Fired{
			{ID: "tobacco-cartons", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 5 > limit 2"},
			{ID: "fresh-topup", Action: "review", Mode: "shadow", Reason: "top-up ¥90000 40m0s before a ¥27000 sale"},
		},
	}
	at := req.At
	return map[string]Event{
		"decision": {
			ID: ID("shinjuku-01", "r2", "5f1c2a9d", 41), Seq: 41, Type: Decision,
			Store: "shinjuku-01", Register: "r2", At: at, SaleID: "s-0001",
			Request: req, Decision: dec, Label: "fraud",
		},
		"alert": {
			ID: ID("shinjuku-01", "r2", "5f1c2a9d", 42), Seq: 42, Type: Alert,
			Store: "shinjuku-01", Register: "r2", At: at, SaleID: "s-0001",
			Request: req, Decision: dec,
		},
		"resolution": {
			ID: ID("shinjuku-01", "r2", "5f1c2a9d", 43), Seq: 43, Type: Resolution,
			Store: "shinjuku-01", Register: "r2", At: at.Add(3 * time.Minute), SaleID: "s-0001",
			Resolution: &ResolutionInfo{ReviewID: "rv-17", Action: Reject, By: "manager-2", At: at.Add(3 * time.Minute)},
		},
		"refusal": {
			ID: ID("shinjuku-01", "r2", "5f1c2a9d", 44), Seq: 44, Type: Refusal,
			Store: "shinjuku-01", Register: "r2", At: at.Add(time.Hour),
			Detail: "policy bundle version 6 refused: version 7 already applied",
		},
		"refused-resolution": {
			ID: ID("shinjuku-01", "r2", "5f1c2a9d", 45), Seq: 45, Type: Refusal,
			Store: "shinjuku-01", Register: "r2", At: at.Add(2 * time.Minute),
			Detail:     "resolution of review rv-17 refused: " + RefusedBadPIN,
			Code:       CodeWrongPIN,
			Resolution: &ResolutionInfo{ReviewID: "rv-17", Action: Approve, By: "display S001", At: at.Add(2 * time.Minute)},
		},
		// HQ's records of its lists' changes: one shape for both lists.
		"denylist": {
			ID: ID(HQStore, HQDenylist, "e1d2c3b4", 12), Seq: 12, Type: DenylistChanged,
			Store: HQStore, Register: HQDenylist, At: at.Add(time.Hour),
			Denylist: &ListInfo{Epoch: "e1d2c3b4", Seq: 12, Add: []string{"acct-9f2c"}, By: "chain:crew-hopping",
				Reason: "account_stores: account paid at 3 stores within 30m0s"},
		},
		"allowlist": {
			ID: ID(HQStore, HQAllowlist, "a7b8c9d0", 3), Seq: 3, Type: AllowlistChanged,
			Store: HQStore, Register: HQAllowlist, At: at.Add(2 * time.Hour),
			Allowlist: &ListInfo{Epoch: "a7b8c9d0", Seq: 3, Add: []string{"acct-office"}, By: "analyst-1 (console)",
				Reason: "case 17 false positive: passed an ID check at store S014"},
		},
	}
}

func TestGoldenRoundTrip(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			got, err := Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := indent(&pretty, got); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".json")
			golden.Check(t, path, pretty.Bytes())
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(want)
			if err != nil {
				t.Fatalf("Parse(%s): %v", path, err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, ev)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "decision.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := os.ReadFile(filepath.Join("testdata", "resolution.json"))
	if err != nil {
		t.Fatal(err)
	}
	refused, err := os.ReadFile(filepath.Join("testdata", "refused-resolution.json"))
	if err != nil {
		t.Fatal(err)
	}
	allow, err := os.ReadFile(filepath.Join("testdata", "allowlist.json"))
	if err != nil {
		t.Fatal(err)
	}
	g, r, rf, al := string(good), string(res), string(refused), string(allow)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "EOF"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"unknown top-level field", strings.Replace(g, `"seq":`, `"extra":1,"seq":`, 1), `unknown field "extra"`},
		{"unknown nested field", strings.Replace(g, `"saleId": "s-0001",
    "store"`, `"saleId": "s-0001", "bogus": true,
    "store"`, 1), `unknown field "bogus"`},
		{"trailing data", g + `{}`, "trailing data"},
		{"oversize", `{"detail":"` + strings.Repeat("x", MaxSize) + `"}`, "exceeds the limit"},
		{"missing id", strings.Replace(g, `"id": "shinjuku-01/r2/5f1c2a9d/41"`, `"id": ""`, 1), "want store/register/epoch/seq"},
		{"seq mismatch", strings.Replace(g, `"seq": 41`, `"seq": 40`, 1), "id has seq 41 but seq is 40"},
		{"zero seq in id", strings.Replace(g, `5f1c2a9d/41`, `5f1c2a9d/0`, 1), "seq must be a positive integer"},
		{"register mismatch", strings.Replace(g, `"register": "r2",
  "at"`, `"register": "r3",
  "at"`, 1), "id names shinjuku-01/r2 but the event is from shinjuku-01/r3"},
		{"missing at", strings.Replace(g, `"at": "2019-07-03T14:05:00Z",
  "saleId"`, `"saleId"`, 1), "at is required"},
		{"bad type", strings.Replace(g, `"type": "decision"`, `"type": "gossip"`, 1), `type "gossip"`},
		{"missing type", strings.Replace(g, `"type": "decision",`, ``, 1), "type is required"},
		{"bad outcome", strings.Replace(g, `"outcome": "deny"`, `"outcome": "maybe"`, 1), `outcome "maybe"`},
		{"sale id mismatch", strings.Replace(g, `"saleId": "s-0001",
  "request"`, `"saleId": "s-9",
  "request"`, 1), "does not match"},
		{"bad label", strings.Replace(g, `"label": "fraud"`, `"label": "maybe"`, 1), `label "maybe"`},
		{"bad resolution action", strings.Replace(r, `"action": "reject"`, `"action": "shrug"`, 1), `resolution.action "shrug"`},
		{"refused resolution without review", strings.Replace(rf, `"reviewId": "rv-17"`, `"reviewId": ""`, 1), "without resolution.reviewId"},
		{"refused timeout", strings.Replace(rf, `"action": "approve"`, `"action": "timeout"`, 1), `refused resolution.action "timeout"`},
		{"unknown refusal code", strings.Replace(rf, `"code": "wrong_pin"`, `"code": "bad_luck"`, 1),
			`refused resolution: code "bad_luck": want one of wrong_pin, rate_limited, no_pins, unknown_review, already_resolved`},
		{"refusal code of another case", strings.Replace(rf, `"code": "wrong_pin"`, `"code": "WRONG_PIN"`, 1), `code "WRONG_PIN"`},
		{"refusal code not a string", strings.Replace(rf, `"code": "wrong_pin"`, `"code": 1`, 1), "cannot unmarshal number"},
		{"code on a policy refusal", strings.Replace(rf, `"resolution": {
    "reviewId": "rv-17",
    "action": "approve",
    "by": "display S001",
    "at": "2019-07-03T14:07:00Z"
  },`, ``, 1), `code "wrong_pin" on a refusal without resolution`},
		{"code on a decision", strings.Replace(g, `"label": "fraud"`, `"label": "fraud", "code": "wrong_pin"`, 1), `code "wrong_pin" on a decision event`},
		{"wrong value type", strings.Replace(g, `"seq": 41`, `"seq": "41"`, 1), "cannot unmarshal string"},
		{"allowlist change from a register", strings.ReplaceAll(strings.ReplaceAll(al, `"hq/allowlist/`, `"s1/r1/`), `"store": "hq",
  "register": "allowlist"`, `"store": "s1",
  "register": "r1"`), "allowlist event from s1/r1: only HQ (hq/allowlist) records them"},
		{"allowlist change in the denylist's place", strings.Replace(al, `"allowlist": {`, `"denylist": {`, 1), "allowlist event without allowlist"},
		{"allowlist change without who", strings.Replace(al, `"by": "analyst-1 (console)",`, ``, 1), "allowlist.by is required"},
		{"allowlist change without why", strings.Replace(al, `"reason": "case 17 false positive: passed an ID check at store S014"`, `"reason": ""`, 1), "allowlist.reason is required"},
		{"allowlist seq mismatch", strings.Replace(al, `"seq": 3,
    "add"`, `"seq": 4,
    "add"`, 1), "allowlist.seq 4 but seq is 3"},
		{"empty allowlist change", strings.Replace(al, `"add": [
      "acct-office"
    ],`, ``, 1), "allowlist event with nothing added or removed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.in == g || tc.in == r || tc.in == rf || tc.in == al) && tc.name != "empty" {
				t.Fatal("test input unchanged: the replacement did not match the golden file")
			}
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatal("Parse accepted bad input")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestSplitID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr bool
		seq     uint64
	}{
		{"s/r/e/1", false, 1},
		{"s/r/e/18446744073709551615", false, 18446744073709551615},
		{"s/r/e", true, 0},
		{"s/r/e/1/2", true, 0},
		{"/r/e/1", true, 0},
		{"s/r/e/-1", true, 0},
		{"s/r/e/x", true, 0},
	}
	for _, tc := range tests {
		_, _, _, seq, err := SplitID(tc.id)
		if (err != nil) != tc.wantErr || seq != tc.seq {
			t.Errorf("SplitID(%q) = %d, %v", tc.id, seq, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParse; the golden files are added too
	// so the fuzzer starts from every event type.
	for _, name := range []string{"decision", "alert", "resolution", "refusal", "refused-resolution", "denylist", "allowlist"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		// Whatever Parse accepts must survive our own encoding unchanged,
		// or HQ and a backtest would see a different event than the register.
		enc, err := Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal of a parsed event: %v", err)
		}
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", enc, err)
		}
		enc2, err := Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// Every refusal code survives the wire, and a refused resolution from a
// register built before codes existed (no code) is still accepted, or HQ
// would refuse it and the register's outbox would hold it forever.
func TestRefusalCodeRoundTrip(t *testing.T) {
	base := goldenEvents()["refused-resolution"]
	for _, code := range append([]Code{""}, Codes()...) {
		t.Run(string(code), func(t *testing.T) {
			ev := base
			ev.Code = code
			b, err := Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), `"code":`); got != (code != "") {
				t.Errorf("encoded %s", b)
			}
			back, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(%s): %v", b, err)
			}
			if back.Code != code || !reflect.DeepEqual(back, ev) {
				t.Errorf("round trip: got %+v, want %+v", back, ev)
			}
		})
	}
}
