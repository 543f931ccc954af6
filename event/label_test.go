package event

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAccountLabel(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	for _, tc := range []struct {
		name, line string
		want       AccountLabel
		err        string
	}{
		{"fraud with case and time", `{"account":"acct-7f3a","label":"fraud","case":"C-2026-0042","at":"2026-07-04T10:00:00+09:00"}`,
			AccountLabel{Account: "acct-7f3a", Label: "fraud", Case: "C-2026-0042", At: time.Date(2026, 7, 4, 10, 0, 0, 0, jst)}, ""},
		{"legit alone", `{"account":"a","label":"legit"}`, AccountLabel{Account: "a", Label: "legit"}, ""},
		{"members in any order", `{"label":"legit","account":"a"}`, AccountLabel{Account: "a", Label: "legit"}, ""},
		{"unknown label", `{"account":"a","label":"maybe"}`, AccountLabel{}, `label "maybe": want fraud or legit`},
		{"label in capitals", `{"account":"a","label":"Fraud"}`, AccountLabel{}, `label "Fraud": want fraud or legit`},
		{"no label", `{"account":"a"}`, AccountLabel{}, `label "": want fraud or legit`},
		{"no account", `{"label":"fraud"}`, AccountLabel{}, "account is required"},
		{"padded account", `{"account":" a","label":"fraud"}`, AccountLabel{}, "leading or trailing white space"},
		{"control in case", `{"account":"a","label":"fraud","case":"C\u0007"}`, AccountLabel{}, "case \"C\\a\" contains a control character"},
		{"long account", `{"account":"` + strings.Repeat("x", 257) + `","label":"fraud"}`, AccountLabel{}, "account is 257 bytes, more than 256"},
		{"unknown member", `{"account":"a","label":"fraud","score":3}`, AccountLabel{}, `unknown object member name "score"`},
		{"misspelt member", `{"Account":"a","label":"fraud"}`, AccountLabel{}, `unknown object member name "Account"`},
		{"repeated member", `{"account":"a","account":"b","label":"fraud"}`, AccountLabel{}, `duplicate object member name "account"`},
		{"date without time", `{"account":"a","label":"fraud","at":"2026-07-04"}`, AccountLabel{}, "at"},
		{"time without zone", `{"account":"a","label":"fraud","at":"2026-07-04T10:00:00"}`, AccountLabel{}, "at"},
		{"number account", `{"account":7,"label":"fraud"}`, AccountLabel{}, "account"},
		{"trailing data", `{"account":"a","label":"fraud"} {}`, AccountLabel{}, "after top-level value"},
		{"array", `[{"account":"a","label":"fraud"}]`, AccountLabel{}, "not a JSON object"},
		{"null", `null`, AccountLabel{}, "not a JSON object"},
		{"empty", ``, AccountLabel{}, "not a JSON object"},
		{"bad UTF-8", "{\"account\":\"a\xff\",\"label\":\"fraud\"}", AccountLabel{}, "not valid UTF-8"},
		{"too long", `{"account":"a","label":"fraud","case":"` + strings.Repeat("x", MaxLabelLine) + `"}`, AccountLabel{}, "more than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAccountLabel([]byte(tc.line))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Account != tc.want.Account || got.Label != tc.want.Label || got.Case != tc.want.Case || !got.At.Equal(tc.want.At) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestMarshalAccountLabelRoundTrip(t *testing.T) {
	l := AccountLabel{Account: "acct-1", Label: LabelFraud, Case: "C-1", At: time.Date(2026, 7, 4, 1, 0, 0, 0, time.UTC)}
	b, err := MarshalAccountLabel(l)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"account":"acct-1","label":"fraud","case":"C-1","at":"2026-07-04T01:00:00Z"}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}
	back, err := ParseAccountLabel(b)
	if err != nil || back != l {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	b, err = MarshalAccountLabel(AccountLabel{Account: "a", Label: LabelLegit})
	if err != nil || string(b) != `{"account":"a","label":"legit"}` {
		t.Errorf("optional fields not omitted: %s %v", b, err)
	}
	if _, err := MarshalAccountLabel(AccountLabel{Account: "a", Label: "fraudulent"}); err == nil {
		t.Error("an invalid label was encoded")
	}
}

func TestReadLabels(t *testing.T) {
	in := "{\"account\":\"a\",\"label\":\"fraud\"}\n\n  {\"account\":\"b\",\"label\":\"legit\",\"case\":\"C-2\"}\r\n{\"account\":\"c\",\"label\":\"legit\"}"
	got, err := ReadLabels(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Account != "a" || got[1].Case != "C-2" || got[2].Account != "c" {
		t.Errorf("got %+v", got)
	}
	if got, err := ReadLabels(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v %v", got, err)
	}
}

func TestReadLabelsRefusesTheFile(t *testing.T) {
	in := strings.Join([]string{
		`{"account":"a","label":"fraud"}`,
		`{"account":"b","label":"legit"}`,
		`{"account":"a","label":"legit"}`,
		`not json`,
		`{"account":"` + strings.Repeat("y", 2*MaxLabelLine) + `","label":"fraud"}`,
		`{"account":"d","label":"fraud"}`,
	}, "\n")
	got, err := ReadLabels(strings.NewReader(in))
	var le *LabelsError
	if !errors.As(err, &le) || got != nil {
		t.Fatalf("got %v, %v; want nothing and a *LabelsError", got, err)
	}
	want := []string{
		`line 3: account "a" is labelled again (first on line 1): one line per account`,
		`line 4: `,
		`line 5: 8222 bytes, more than 4096`,
	}
	if len(le.Problems) != len(want) {
		t.Fatalf("problems %q, want %d", le.Problems, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(le.Problems[i], w) {
			t.Errorf("problem %d is %q, want it to start %q", i, le.Problems[i], w)
		}
	}
}

func TestReadLabelsCapsProblems(t *testing.T) {
	var b bytes.Buffer
	for range 25 {
		b.WriteString(`{"account":"a","label":"no"}` + "\n")
	}
	_, err := ReadLabels(&b)
	var le *LabelsError
	if !errors.As(err, &le) || len(le.Problems) != 20 || le.More != 5 || !strings.HasSuffix(err.Error(), "; and 5 more") {
		t.Fatalf("got %v", err)
	}
}

// FuzzReadLabels: arbitrary input never panics; a refusal names its lines;
// what is accepted survives encoding and reading again unchanged.
func FuzzReadLabels(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzReadLabels.
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadLabels(bytes.NewReader(data))
		if err != nil {
			var le *LabelsError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LabelsError with problems", err)
			}
			for _, p := range le.Problems {
				if !strings.HasPrefix(p, "line ") || len(p) < len("line 1: x") {
					t.Fatalf("problem %q does not name its line and reason", p)
				}
			}
			return
		}
		var enc bytes.Buffer
		seen := map[string]bool{}
		for _, l := range got {
			if seen[l.Account] {
				t.Fatalf("account %q accepted twice", l.Account)
			}
			seen[l.Account] = true
			b, err := MarshalAccountLabel(l)
			if err != nil {
				t.Fatalf("encode an accepted label: %v", err)
			}
			enc.Write(b)
			enc.WriteByte('\n')
		}
		again, err := ReadLabels(&enc)
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-read of %q: %v", enc.String(), err)
		}
		for i := range got {
			if got[i].Account != again[i].Account || got[i].Label != again[i].Label || got[i].Case != again[i].Case || !got[i].At.Equal(again[i].At) {
				t.Fatalf("label %d changed: %+v then %+v", i, got[i], again[i])
			}
		}
	})
}
