package policy

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/golden"
)

func loadExample(t testing.TB) *Policy {
	t.Helper()
	return loadTestdata(t, "chain-default.yaml")
}

// loadTestdata loads a policy file of testdata/.
func loadTestdata(t testing.TB, name string) *Policy {
	t.Helper()
	p, err := LoadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return p
}

func TestLoadExample(t *testing.T) {
	p := loadExample(t)
	if p.Metadata.Name != "chain-default" || p.Metadata.Version != 1 {
		t.Errorf("metadata = %+v", p.Metadata)
	}
	if len(p.Rules) != 13 {
		t.Errorf("rules = %d, want 13", len(p.Rules))
	}
	if p.Thresholds != (Thresholds{Review: 40, Deny: 80}) {
		t.Errorf("thresholds = %+v", p.Thresholds)
	}
	kinds := map[string]bool{}
	for _, r := range p.Rules {
		kinds[r.Kind] = true
	}
	for k := range ruleKinds {
		if !kinds[k] {
			t.Errorf("example policy has no %s rule", k)
		}
	}
	k := p.Tokens.Issuers[0].Keys[0]
	if _, ok := k.Public.(ed25519.PublicKey); !ok {
		t.Errorf("issuer key parsed to %T, want ed25519.PublicKey", k.Public)
	}
	o := p.Tokens.Opaque[0]
	if o.Re == nil || !o.Re.MatchString("28"+strings.Repeat("1", 18)) || o.Re.MatchString("x28"+strings.Repeat("1", 18)) {
		t.Errorf("opaque pattern not anchored to the whole text: %v", o.Re)
	}
	if p.Tokens.MaxAge.D() != 5*time.Minute || p.Tokens.ClockSkew.D() != 30*time.Second {
		t.Errorf("token times = %v %v", p.Tokens.MaxAge, p.Tokens.ClockSkew)
	}
}

func TestTokenDefaults(t *testing.T) {
	src := strings.Replace(mustRead(t, "testdata/chain-default.yaml"), "  maxAge: 5m\n  clockSkew: 30s\n", "", 1)
	p, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tokens.MaxAge.D() != 5*time.Minute || p.Tokens.ClockSkew.D() != 30*time.Second {
		t.Errorf("defaults = %v %v, want 5m 30s", p.Tokens.MaxAge.D(), p.Tokens.ClockSkew.D())
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrokenPolicies checks that each class of mistake is reported, with its
// path, and that all problems of a file come at once.
func TestBrokenPolicies(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken policies: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := LoadFile(f)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("LoadFile = %v, want a *ValidationError", err)
			}
			var b strings.Builder
			for _, p := range ve.Problems {
				if p.Path == "" || p.Reason == "" {
					t.Errorf("problem without path or reason: %+v", p)
				}
				b.WriteString(p.String() + "\n")
			}
			golden.Check(t, filepath.Join("testdata", "broken", name+".golden"), []byte(b.String()))
		})
	}
}

func TestCheckGTIN(t *testing.T) {
	tests := []struct {
		code string
		want string // "" = valid
	}{
		{"4901234000100", ""},
		{"4901234000101", "check digit is 0, not 1"},
		{"49123456", ""},
		{"49123457", "check digit is 6, not 7"},
		{"012345678905", ""},
		{"012345678906", "check digit is 5, not 6"},
		{"14901234000107", ""},
		{"14901234000108", "check digit is 7, not 8"},
		{"4902", "length 4 is not a GTIN length (8, 12, 13 or 14 digits)"},
		{"490123400010X", "character 'X' at position 13 is not a digit"},
		{"", "length 0 is not a GTIN length (8, 12, 13 or 14 digits)"},
	}
	for _, tt := range tests {
		err := checkGTIN(tt.code)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("checkGTIN(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestItemLookup(t *testing.T) {
	p := loadExample(t)
	tests := []struct {
		jan      string
		ok       bool
		category string
		units    int
	}{
		{"4901234000100", true, "tobacco-carton", 10},
		{"4901234200012", true, "food", 1},
		{"49123456", true, "food", 1},
		{"4901234099992", true, "tobacco", 1}, // maker block range
		{"4901235000000", false, "", 0},
		{"4901", false, "", 0},
		{"", false, "", 0},
	}
	for _, tt := range tests {
		it, ok := p.Item(tt.jan)
		if ok != tt.ok || it.Category != tt.category || it.Units != tt.units {
			t.Errorf("Item(%q) = %+v, %v; want category %q units %d ok %v", tt.jan, it, ok, tt.category, tt.units, tt.ok)
		}
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	p := loadExample(t)
	a, err := p.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Load(a)
	if err != nil {
		t.Fatalf("canonical JSON does not load back: %v", err)
	}
	b, err := q.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("canonical form not stable:\n%s\n%s", a, b)
	}
	// Reformatting the YAML (comments, order of keys in a map) must not
	// change the canonical bytes.
	src := mustRead(t, "testdata/chain-default.yaml")
	src = strings.ReplaceAll(src, "# ", "#  ")
	src = strings.Replace(src, "apiVersion: posguard/v1\nkind: Policy\n", "kind: Policy\napiVersion: posguard/v1\n", 1)
	r, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Canonical()
	if !bytes.Equal(a, c) {
		t.Error("reformatted YAML gave different canonical bytes")
	}
}

func TestExpiredCovers(t *testing.T) {
	p := loadExample(t)
	exp := p.Metadata.ExpiresAt
	if p.Expired(exp.Add(-time.Second)) || !p.Expired(exp) || !p.Expired(exp.Add(time.Hour)) {
		t.Error("Expired boundary wrong: the expiry instant itself is expired")
	}
	if !p.Covers("S001") {
		t.Error("stores [all] must cover S001")
	}
	p.Scope.Stores = []string{"S001", "S002"}
	if !p.Covers("S002") || p.Covers("S003") {
		t.Error("explicit store list not honoured")
	}
	p.Scope.Stores = nil
	if !p.Covers("anything") {
		t.Error("empty scope must cover every store")
	}
}

func TestLoadLimits(t *testing.T) {
	big := bytes.Repeat([]byte("#"), MaxDocumentSize+1)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized document: %v", err)
	}
	two := mustRead(t, "testdata/chain-default.yaml") + "\n---\nkind: Policy\n"
	if _, err := Load([]byte(two)); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", err)
	}
}

func TestYen(t *testing.T) {
	for in, want := range map[int64]string{0: "¥0", 700: "¥700", 1000: "¥1,000", 90400: "¥90,400", 1234567: "¥1,234,567", -5000: "-¥5,000"} {
		if got := yen(in); got != want {
			t.Errorf("yen(%d) = %q, want %q", in, got, want)
		}
	}
}
