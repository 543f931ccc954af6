package aim

import (
	"testing"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		id     string
		want   scan.Symbology
		wantOK bool
	}{
		{"]E0", scan.EAN13, true},
		{"]E4", scan.EAN8, true},
		{"]I1", scan.ITF14, true},
		{"]C1", scan.GS1128, true},
		{"]Q1", scan.QR, true},
		{"]d2", scan.DataMatrix, true},
		{"]Z9", scan.Unknown, true}, // well-formed, not one we know
		{"E0]", scan.Unknown, false},
		{"]E", scan.Unknown, false},
	}
	for _, tt := range tests {
		got, ok := Lookup([]byte(tt.id))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %s, %v; want %s, %v", tt.id, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, sym := range []scan.Symbology{scan.EAN13, scan.EAN8, scan.ITF14, scan.GS1128, scan.Code128, scan.QR, scan.DataMatrix} {
		got, ok := Lookup([]byte(ID(sym)))
		if !ok || got != sym {
			t.Errorf("Lookup(ID(%s)) = %s, %v", sym, got, ok)
		}
	}
	if ID(scan.Unknown) != "]X0" {
		t.Errorf("ID(Unknown) = %q, want ]X0", ID(scan.Unknown))
	}
}
