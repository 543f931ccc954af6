package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DecisionJSON is the indented JSON of a decision as `posguard policy eval`
// prints it: rules is [] rather than null, and "<" and ">" in reasons stay
// readable instead of becoming \u003c escapes.
func DecisionJSON(d Decision) ([]byte, error) {
	if d.Rules == nil {
		d.Rules = []Fired{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode decision: %w", err)
	}
	return b.Bytes(), nil
}
