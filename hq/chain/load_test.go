package chain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posguard/posguard/internal/golden"
)

func TestLoadExample(t *testing.T) {
	d, err := LoadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rules) != 5 || d.Rules[2].Mode != ModeShadow || d.Rules[0].Mode != ModeEnforce {
		t.Fatalf("rules = %+v", d.Rules)
	}
	for _, r := range d.Rules {
		if r.kind == nil {
			t.Errorf("rule %s: no kind after load", r.ID)
		}
	}
	if d.Rules[4].prog == nil {
		t.Error("expr rule not compiled")
	}
}

// Every problem of a broken document, with its key path, at once.
func TestLoadProblems(t *testing.T) {
	b, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(b)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	golden.Check(t, "testdata/bad.problems", []byte(err.Error()+"\n"))
}

func TestLoadSmall(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "document: empty"},
		{"two docs", "apiVersion: posguard/v1\n---\nkind: x\n", "document: more than one YAML document"},
		{"not yaml", "rules: [", "line 1: did not find expected node content"},
		{"costly expr", "apiVersion: posguard/v1\nkind: ChainRules\nmetadata: {name: x}\nrules:\n- id: e\n  kind: expr\n  window: 1h\n  expr: " +
			strings.Repeat("event.account.contains(event.store) && ", 80) + "true\n", "rules[0].expr: worst-case cost"},
		{"no rules", "apiVersion: posguard/v1\nkind: ChainRules\nmetadata: {name: x}\n", "rules: at least one rule is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Load(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error is not a ValidationError with problems: %v", err)
			}
			for _, p := range ve.Problems {
				if p.Path == "" || p.Reason == "" {
					t.Fatalf("problem without path or reason: %+v", p)
				}
			}
			return
		}
		for _, r := range d.Rules {
			if r.kind == nil || r.Window <= 0 || (r.Kind == KindExpr && r.prog == nil) {
				t.Fatalf("accepted rule not ready: %+v", r)
			}
		}
	})
}
