package wire

import "testing"

func TestIsHQUsername(t *testing.T) {
	for u, want := range map[string]bool{
		"hq": true, "hq-push": true, "hq-b_2": true, "hq-x": true,
		"": false, "hq-": false, "hqx": false, "HQ": false, "hq-a/b": false, "hq/R1": false,
		"hq-+": false, "hq-#": false, "hq-a.b": false, "display/hq": false,
		"hq-abcdefghijklmnopqrstuvwxyz0123456": false, // name longer than 32
	} {
		if got := IsHQUsername(u); got != want {
			t.Errorf("IsHQUsername(%q) = %v, want %v", u, got, want)
		}
	}
}
