package yamlpath

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

const doc = `metadata:
  version: one
rules:
  - id: a
    window: 1h
  - id: b
    maxQuantiy: 2
scope: {stores: [s1]}
`

func TestLocate(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	p := Of(&root)
	tests := []struct {
		msg                   string
		path, reason, unknown string
		line                  int
		ok                    bool
	}{
		{"line 2: cannot unmarshal !!str `one` into int64", "metadata.version", "cannot unmarshal !!str `one` into int64", "", 2, true},
		{"yaml: line 7: field maxQuantiy not found in type policy.Rule", "rules[1].maxQuantiy", "field maxQuantiy not found in type policy.Rule", "maxQuantiy", 7, true},
		{"line 4: bad", "rules[0]", "bad", "", 4, true},
		{"line 8: bad", "scope", "bad", "", 8, true},
		{"line 99: bad", "line 99", "bad", "", 99, true},
		{"yaml: did not find expected key", "", "", "", 0, false},
	}
	for _, tt := range tests {
		pl, ok := p.Locate(tt.msg)
		if ok != tt.ok || pl.Path != tt.path || pl.Reason != tt.reason || pl.UnknownField != tt.unknown || pl.Line != tt.line {
			t.Errorf("Locate(%q) = %+v, %v; want path %q reason %q unknown %q line %d, %v",
				tt.msg, pl, ok, tt.path, tt.reason, tt.unknown, tt.line, tt.ok)
		}
	}
}
