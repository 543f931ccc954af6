package policy

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML parses a Go duration ("90s", "1h"). It reports a bad value
// as a yaml.TypeError with the line, so the decoder keeps going and Load can
// list it with every other problem instead of stopping at the first.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a duration must be a scalar like 90s or 1h", n.Line)}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q: write Go syntax like 90s, 30m or 1h", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}
