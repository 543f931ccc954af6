package i18n

import (
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	cases := []struct {
		header, want string
		wantErr      bool
	}{
		{"", Japanese, false},
		{"ja", Japanese, false},
		{"ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", Japanese, false},
		{"en-US,en;q=0.9", English, false},
		{"en-GB", English, false},
		{"en;q=0.5,ja;q=0.9", Japanese, false},
		{"ja;q=0.1,en;q=0.9", English, false},
		{"fr-FR,de;q=0.8", Japanese, false}, // neither: the stores are Japanese
		{"fr-FR,en;q=0.5", English, false},  // English is the only one asked for
		{"*", Japanese, false},
		{"zh-TW,zh;q=0.9", Japanese, false},
		{"en;q=abc", Japanese, true},
		{strings.Repeat("en,", 400), Japanese, true},
	}
	for _, c := range cases {
		got, err := Parse(c.header)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("Parse(%.40q) = %q, %v; want %q, error %v", c.header, got, err, c.want, c.wantErr)
		}
		if Pick(c.header) != c.want {
			t.Errorf("Pick(%.40q) != Parse", c.header)
		}
	}
}

func TestTablesComplete(t *testing.T) {
	ja, en := tables[Japanese], tables[English]
	for k := range ja {
		if en[k] == "" {
			t.Errorf("English lacks %q", k)
		}
	}
	for k := range en {
		if ja[k] == "" {
			t.Errorf("Japanese lacks %q", k)
		}
	}
	if T(English, "deny") != "DENY" || T(Japanese, "deny") != "拒否" || T(English, "no-such-key") != "no-such-key" {
		t.Error("T lookups wrong")
	}
	// Table hands out copies: a caller cannot change the page's strings.
	Table()[English]["deny"] = "x"
	if T(English, "deny") != "DENY" {
		t.Error("Table returned the shared map")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("ja-JP,ja;q=0.9,en;q=0.8")
	f.Fuzz(func(t *testing.T, h string) {
		lang, err := Parse(h)
		if !Valid(lang) {
			t.Fatalf("Parse(%q) = %q, not a supported language", h, lang)
		}
		if err != nil && lang != Japanese {
			t.Fatalf("Parse(%q) failed but did not fall back to Japanese", h)
		}
	})
}
