package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/wire"
)

const factsTopic = "posguard/v1/store/s042/facts/r1"

func goodFacts() wire.Facts {
	atc := uint32(5)
	return wire.Facts{
		ID: "s042/r1/9f2c4e1a0b3d5f70/17", Store: "s042", Register: "r1", At: at, Outcome: "allow",
		Account: "emv:3b1f0c", Spent: &wire.Spent{Key: "emv:3b1f0c:5", Until: at.Add(7 * 24 * time.Hour)},
		ATC:  &atc,
		Cats: []wire.FactCat{{Cat: "tobacco", Qty: 10, Amount: 5800}, {Cat: "food", Qty: 1, Amount: 120}},
	}
}

func TestFactsRoundTrip(t *testing.T) {
	b, err := goodFacts().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.ParseFacts(factsTopic, b)
	if err != nil {
		t.Fatal(err)
	}
	if normalize(got) != normalize(goodFacts()) {
		t.Fatalf("round trip: %+v", got)
	}
	// A token without an account (opaque wallets without one do not
	// exist, but a PG1 deny for a bad claim might) still shares its mark.
	f := wire.Facts{ID: "s042/r1/e/1", Store: "s042", Register: "r1", At: at, Outcome: "deny",
		Spent: &wire.Spent{Key: "pg1:abc", Until: at}}
	if _, err := f.Marshal(); err != nil {
		t.Fatal(err)
	}
}

func TestFactsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*wire.Facts)
		topic string
		raw   string
		want  string
	}{
		{name: "id of another register", mod: func(f *wire.Facts) { f.ID = "s042/r2/e/1" }, want: "is not one of s042/r1's"},
		{name: "no id", mod: func(f *wire.Facts) { f.ID = "" }, want: "facts: id: empty event id"},
		{name: "no time", mod: func(f *wire.Facts) { f.At = time.Time{} }, want: "facts: at: required"},
		{name: "bad outcome", mod: func(f *wire.Facts) { f.Outcome = "maybe" }, want: `outcome "maybe"`},
		{name: "no outcome", mod: func(f *wire.Facts) { f.Outcome = "" }, want: "facts: outcome: required"},
		{name: "nothing", mod: func(f *wire.Facts) { f.Account, f.Spent, f.ATC, f.Cats = "", nil, nil, nil }, want: "nothing to share"},
		{name: "atc without account", mod: func(f *wire.Facts) { f.Account, f.Cats = "", nil }, want: "need an account"},
		{name: "key with space", mod: func(f *wire.Facts) { f.Spent.Key = "pg1:a b" }, want: "spent.key: byte 0x20"},
		{name: "key too long", mod: func(f *wire.Facts) { f.Spent.Key = strings.Repeat("k", 257) }, want: "longer than 256"},
		{name: "mark without expiry", mod: func(f *wire.Facts) { f.Spent.Until = time.Time{} }, want: "spent.until: required"},
		{name: "negative qty", mod: func(f *wire.Facts) { f.Cats[0].Qty = -1 }, want: "cats[0].qty -1"},
		{name: "huge amount", mod: func(f *wire.Facts) { f.Cats[1].Amount = 1 << 62 }, want: "cats[1].amount"},
		{name: "empty category", mod: func(f *wire.Facts) { f.Cats[0].Cat = "" }, want: "cats[0].cat: required"},
		{name: "too many categories", mod: func(f *wire.Facts) { f.Cats = make([]wire.FactCat, 65) }, want: "65 categories, limit 64"},
		{name: "forged register", topic: "posguard/v1/store/s042/facts/r2", want: "from s042/r1 but arrived on posguard/v1/store/s042/facts/r2"},
		{name: "other store's topic", topic: "posguard/v1/store/s043/facts/r1", want: "arrived on"},
		{name: "not a facts topic", topic: "posguard/v1/reg/s042/r1/events", want: "not under posguard/v1/store/"},
		{name: "unknown field", raw: `{"id":"s042/r1/e/1","store":"s042","register":"r1","at":"2019-07-03T10:15:00Z","outcome":"allow","account":"a","pan":"4111"}`, want: `unknown field "pan"`},
		{name: "trailing", raw: `{"id":"s042/r1/e/1","store":"s042","register":"r1","at":"2019-07-03T10:15:00Z","outcome":"allow","account":"a"} {}`, want: "trailing data"},
		{name: "too big", raw: `"` + strings.Repeat("x", wire.MaxFactsBytes) + `"`, want: "limit 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.raw == "" {
				f := goodFacts()
				if tc.mod != nil {
					tc.mod(&f)
					if _, err := f.Marshal(); err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("Marshal: err %v, want %q", err, tc.want)
					}
				}
				var err error
				if data, err = jsonOf(f); err != nil {
					t.Fatal(err)
				}
			}
			topic := tc.topic
			if topic == "" {
				topic = factsTopic
			}
			_, err := wire.ParseFacts(topic, data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseFacts: err %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseFacts(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func(b []byte) (wire.Facts, error) { return wire.ParseFacts(factsTopic, b) })
	})
}

// jsonOf encodes f without Validate, to feed ParseFacts what a broken or
// hostile peer might send.
func jsonOf(f wire.Facts) ([]byte, error) { return json.Marshal(f) }
