package policy

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary documents to the loader: it must never panic, and
// a rejection must be a ValidationError whose every problem has a path and a
// reason; an accepted policy must have a stable canonical form.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	files = append(files, "testdata/chain-default.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error is not a ValidationError with problems: %v", err)
			}
			for _, pr := range ve.Problems {
				if pr.Path == "" || pr.Reason == "" {
					t.Fatalf("problem without path or reason: %+v", pr)
				}
			}
			return
		}
		c, err := p.Canonical()
		if err != nil {
			t.Fatalf("canonical: %v", err)
		}
		q, err := Load(c)
		if err != nil {
			t.Fatalf("canonical form does not load back: %v\n%s", err, c)
		}
		if c2, _ := q.Canonical(); string(c2) != string(c) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c, c2)
		}
	})
}

// FuzzEvaluate decides random sales (lines, claims, times, token states)
// with the example policy and a random history: no panic, and the outcome is
// always one of the three and never weaker than an enforced fired rule.
func FuzzEvaluate(f *testing.F) {
	p := loadExample(f)
	f.Add([]byte{}, int64(0), int64(0), "pg1", "", true, false)
	f.Add([]byte("\x01\x0f\x00\x00\x17\x70\x02\x01"), int64(40*60), int64(90000), "pg1", "", true, false)
	f.Add([]byte("\x00\xff\xff\xff\xff\xff\xff\xff"), int64(-1<<62), int64(-1), "unknown", "", false, true)
	f.Add([]byte("\x05\x02\x00\x00\x00\x10"), int64(1<<62), int64(1<<62), "opaque", "replayed", false, true)
	jans := []string{"4901234000100", "4901234000209", "4901234000018", "4901234000308", "4901234000315", "4901234200012", "49123456", "4901234099992", "0000000000000", ""}
	cats := []string{"", "tobacco", "tobacco-carton", "e-cigarette", "food", "drink", "unknown", "no-such"}
	f.Fuzz(func(t *testing.T, cart []byte, topUpAgo, topUp int64, kind, invalid string, foreign, offline bool) {
		at := time.Date(2026, 7, 4, 10, 40, 0, 0, time.UTC)
		req := Request{Store: "S1", Register: "R1", At: at, Offline: offline, Payment: Payment{
			Kind: kind, Account: "a", Invalid: invalid, ForeignLogin: foreign,
			TopUpAt: at.Add(-time.Duration(topUpAgo) * time.Second), TopUpAmount: topUp,
			DeviceSince: at.Add(-time.Duration(topUp) * time.Millisecond), AccountSince: at.Add(time.Duration(topUpAgo)),
		}}
		var past []PastSale
		for len(cart) >= 8 {
			l := Line{
				JAN:       jans[int(cart[0])%len(jans)],
				Category:  cats[int(cart[1])%len(cats)],
				Quantity:  int(int16(binary.BigEndian.Uint16(cart[2:4]))),
				UnitPrice: int64(int32(binary.BigEndian.Uint32(cart[4:8]))),
			}
			req.Lines = append(req.Lines, l)
			past = append(past, PastSale{At: at.Add(-time.Duration(cart[0]) * time.Minute), Account: string(rune('a' + cart[1]%4)), Store: "S1", Register: "R1", Lines: []Line{l}})
			cart = cart[8:]
		}
		d := Evaluate(p, req, NewMemoryHistory(past, []string{"b"}))
		strongest := p.Thresholds.band(d.Score)
		score, shadow := 0, 0
		for _, r := range d.Rules {
			if r.ID == "" || r.Reason == "" || len(r.Reasons) == 0 || (r.Action != "review" && r.Action != "deny" && r.Action != ActionScore) {
				t.Fatalf("bad fired rule %+v", r)
			}
			if r.Mode == ModeEnforce && rank(Outcome(r.Action)) > rank(strongest) {
				strongest = Outcome(r.Action)
			}
			if r.Mode == ModeShadow {
				shadow += r.Score
			} else {
				score += r.Score
			}
		}
		if d.Outcome != strongest || d.Score != score || d.ShadowScore != shadow {
			t.Fatalf("outcome %q score %d shadow %d, want %q %d %d (%+v)", d.Outcome, d.Score, d.ShadowScore, strongest, score, shadow, d.Rules)
		}
		if invalid != "" && d.Outcome == Allow {
			t.Fatalf("invalid token allowed: %+v", d)
		}
		if fm := EvaluateFailMode(DefaultFailMode(), req); fm.Outcome != Allow && fm.Outcome != Review && fm.Outcome != Deny {
			t.Fatalf("fail mode outcome %q", fm.Outcome)
		}
	})
}

// FuzzLoadHistory: the history file parser never panics, and what it
// accepts answers every query.
func FuzzLoadHistory(f *testing.F) {
	b, err := os.ReadFile("testdata/history/shinjuku.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := LoadHistory(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		at := time.Date(2026, 7, 4, 15, 0, 0, 0, time.UTC)
		h.AccountSales("acct-1", "S001", "", at.Add(-time.Hour), nil)
		h.AccountSales("acct-1", "S001", "R1", at.Add(-time.Hour), []string{"tobacco-carton", "unknown"})
		h.DistinctAccounts("S001", "R1", at.Add(-30*time.Minute), []string{"tobacco-carton"}, "acct-2")
		h.DistinctAccounts("S001", "", at.Add(-30*time.Minute), nil, "acct-2")
		h.Denylisted("acct-flagged-1")
	})
}
