package sim

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

func TestParseStep(t *testing.T) {
	tests := []struct {
		in      string
		want    Step
		ok      bool
		wantErr string
	}{
		{"", Step{}, false, ""},
		{"   # a comment", Step{}, false, ""},
		{"ean13 4901234567894", Step{Op: "scan", Sym: scan.EAN13, Data: []byte("4901234567894")}, true, ""},
		{"qr PG1:AB CD", Step{Op: "scan", Sym: scan.QR, Data: []byte("PG1:AB CD")}, true, ""},
		{"bad ean8 49012347", Step{Op: "scan", Sym: scan.EAN8, Data: []byte("49012347"), Corrupt: true}, true, ""},
		{"raw 02 41 0d", Step{Op: "raw", Data: []byte{2, 'A', '\r'}}, true, ""},
		{"sleep 200ms", Step{Op: "sleep", Sleep: 200 * time.Millisecond}, true, ""},
		{"unplug", Step{Op: "unplug"}, true, ""},
		{"replug", Step{Op: "replug"}, true, ""},
		{"wait", Step{Op: "wait"}, true, ""},
		{"sleep soon", Step{}, false, "sleep:"},
		{"sleep -1s", Step{}, false, "not between"},
		{"raw zz", Step{}, false, "raw: bytes must be hex"},
		{"raw", Step{}, false, "raw: no bytes"},
		{"ean13", Step{}, false, "ean13: no data"},
		{"unplug now", Step{}, false, "takes no argument"},
		{"bad sleep 1s", Step{}, false, "bad: must be followed by a scan"},
		{"bad bad ean13 1", Step{}, false, "bad:"},
		{"teleport", Step{}, false, `unknown command "teleport"`},
	}
	for _, tt := range tests {
		got, ok, err := ParseStep(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseStep(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ok != tt.ok || got.Op != tt.want.Op || got.Sym != tt.want.Sym || string(got.Data) != string(tt.want.Data) || got.Sleep != tt.want.Sleep || got.Corrupt != tt.want.Corrupt {
			t.Errorf("ParseStep(%q) = %+v, %v, %v; want %+v, %v", tt.in, got, ok, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseStep: any line parses or is rejected with a reason, never
// panics, and what parses is within the limits.
func FuzzParseStep(f *testing.F) {
	for _, s := range []string{"ean13 4901234567894", "bad qr PG1:X", "raw 0d0a", "sleep 1ms", "unplug", "# x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		st, ok, err := ParseStep(in)
		if err != nil {
			if ok || err.Error() == "" {
				t.Fatalf("error %v with ok=%v", err, ok)
			}
			return
		}
		if ok && (st.Op == "" || len(st.Data) > MaxScriptData || st.Sleep < 0 || st.Sleep > time.Hour) {
			t.Fatalf("accepted %+v", st)
		}
	})
}

func TestExampleScriptParses(t *testing.T) {
	raw, err := os.ReadFile("testdata/example.script")
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for i, l := range strings.Split(string(raw), "\n") {
		_, ok, err := ParseStep(l)
		if err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if ok {
			steps++
		}
	}
	if steps != 10 {
		t.Errorf("%d steps, want 10", steps)
	}
}
