package scan

import "testing"

func TestInfer(t *testing.T) {
	tests := []struct {
		in   string
		want Symbology
	}{
		{"4901234567894", EAN13},
		{"4901234567890", Unknown}, // wrong check digit: never an item
		{"49012347", EAN8},
		{"49012340", Unknown},
		{"036000291452", UPCA},
		{"14901234567891", ITF14},
		{"PG1:6BFOXN*TS0BI$ZD", QR},
		{"hQVDUFYwMWEaTw", QR},
		{"12345678901234567890", QR}, // long numeric wallet code
		{"12345", Unknown},
		{"\x1d0104901234567894", GS1128},
		{"(01)04901234567894", GS1128},
		{"", Unknown},
	}
	for _, tt := range tests {
		if got := Infer([]byte(tt.in)); got != tt.want {
			t.Errorf("Infer(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestValidGTIN(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4901234567894", true},
		{"4006381333931", true},
		{"4006381333932", false},
		{"96385074", true},
		{"9638507x", false},
		{"1", false},
	}
	for _, tt := range tests {
		if got := ValidGTIN([]byte(tt.in)); got != tt.want {
			t.Errorf("ValidGTIN(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
