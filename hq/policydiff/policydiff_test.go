package policydiff

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posguard/posguard/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func canonical(t testing.TB, p *policy.Policy) []byte {
	t.Helper()
	b, err := p.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The YAML shown is itself a policy: it loads to the very document it
// was made from.
func TestYAMLLoadsBack(t *testing.T) {
	for _, f := range []string{"chain-default.yaml", "unscored.yaml"} {
		p, err := policy.LoadFile(filepath.Join("..", "..", "policy", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		doc := canonical(t, p)
		y, err := YAML(doc)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(y, []byte(": {")) || bytes.Contains(y, []byte(": [")) || bytes.Contains(y, []byte("- {")) {
			t.Errorf("%s: flow style left in the YAML:\n%s", f, y)
		}
		back, err := policy.Load(y)
		if err != nil {
			t.Fatalf("%s: the YAML does not load: %v\n%s", f, err, y)
		}
		if got := canonical(t, back); !bytes.Equal(got, doc) {
			t.Errorf("%s: YAML round trip changed the document:\n%s\nwant\n%s", f, got, doc)
		}
	}
}

func TestUnifiedGolden(t *testing.T) {
	p, err := policy.LoadFile(filepath.Join("..", "..", "policy", "testdata", "chain-default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	from := canonical(t, p)
	y, _ := YAML(from)
	// v2 raises one limit: the diff is the version and that line.
	changed := strings.Replace(string(y), "maxAmount: 50000", "maxAmount: 60000", 1)
	changed = strings.Replace(changed, "version: 1\n", "version: 2\n", 1)
	p2, err := policy.Load([]byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Unified(Side{"chain-default v1", from}, Side{"chain-default v2", canonical(t, p2)})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "v1-v2.diff")
	if *update {
		os.WriteFile(golden, []byte(d), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if d != string(want) {
		t.Errorf("diff:\n%s\nwant (%s):\n%s", d, golden, want)
	}
	if same, err := Unified(Side{"a", from}, Side{"b", from}); err != nil || same != "" {
		t.Errorf("a version against itself: %q %v, want no diff", same, err)
	}
}

func TestYAMLRefuses(t *testing.T) {
	for doc, want := range map[string]string{
		"":                         "policy document",
		"[1, 2]":                   "not a JSON object",
		"a: b":                     "not JSON",
		`{"a": `:                   "policy document",
		strings.Repeat(" ", 2<<20): "limit",
	} {
		if _, err := YAML([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("YAML(%.20q) = %v, want an error saying %q", doc, err, want)
		}
	}
}

func FuzzYAML(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"posguard/v1","kind":"Policy","metadata":{"name":"x","version":1}}`))
	f.Add([]byte(`{"a":[1,"two",{"b":null}],"c":"multi\nline"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		y, err := YAML(doc)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error that says nothing")
			}
			return
		}
		if _, err := Unified(Side{"a", doc}, Side{"b", doc}); err != nil {
			t.Fatalf("YAML took it, Unified did not: %v", err)
		}
		_ = y
	})
}
