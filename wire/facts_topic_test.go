package wire

import (
	"strings"
	"testing"
)

func TestFactsTopic(t *testing.T) {
	if got := FactsTopic("S001", "R2"); got != "posguard/v1/store/S001/facts/R2" {
		t.Fatalf("FactsTopic = %q", got)
	}
	s, r, err := ParseFactsTopic(FactsTopic("S001", "R2"))
	if err != nil || s != "S001" || r != "R2" {
		t.Fatalf("ParseFactsTopic round trip: %q %q %v", s, r, err)
	}
	for topic, want := range map[string]string{
		"posguard/v1/reg/S001/R2/events":        "not under posguard/v1/store/",
		"posguard/v1/store/S001/facts":          "want posguard/v1/store/{store}/facts/{register}",
		"posguard/v1/store/S001/status/R2":      "want posguard/v1/store/{store}/facts/{register}",
		"posguard/v1/store/S001/facts/+":        "register id",
		"posguard/v1/store/#/facts/R2":          "store id",
		"posguard/v1/store/S001/facts/R2/extra": "want posguard/v1/store/{store}/facts/{register}",
	} {
		if _, _, err := ParseFactsTopic(topic); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFactsTopic(%q) = %v, want %q", topic, err, want)
		}
	}
	if FactsFilter("S001") != "posguard/v1/store/S001/facts/+" {
		t.Errorf("FactsFilter = %q", FactsFilter("S001"))
	}
}
