package ascii

import "testing"

func TestVisible(t *testing.T) {
	tests := []struct{ in, want string }{
		{"S001/R1/ep/12", ""},
		{"~!", ""},
		{"", ""},
		{"a b", "key: byte 0x20 at 1 is not visible ASCII"},
		{"ab\x7f", "key: byte 0x7f at 2 is not visible ASCII"},
		{"\tx", "key: byte 0x9 at 0 is not visible ASCII"},
		{"レジ", "key: byte 0xe3 at 0 is not visible ASCII"},
	}
	for _, tt := range tests {
		err := Visible("key", tt.in)
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("Visible(%q) = %q, want %q", tt.in, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("Visible(%q) accepted, want %q", tt.in, tt.want)
		}
	}
}
