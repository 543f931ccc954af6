package policy

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder stops at the first time.Time it cannot parse, without a
// line number. Metadata and IssuerKey, the two types with times, decode
// themselves so a bad date becomes one more "line N: ..." problem and the
// rest of the document is still checked. Node.Decode does not carry the
// decoder's KnownFields setting, so unknown keys are reported here too.

type yamlField struct {
	name string
	set  func(v *yaml.Node) error
}

func decodeFields(n *yaml.Node, what string, fields []yamlField) error {
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s must be a mapping", n.Line, what)}}
	}
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var set func(*yaml.Node) error
		for _, f := range fields {
			if f.name == k.Value {
				set = f.set
			}
		}
		if set == nil {
			errs = append(errs, fmt.Sprintf("line %d: unknown field %q", k.Line, k.Value))
			continue
		}
		if err := set(v); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				errs = append(errs, te.Errors...)
			} else {
				errs = append(errs, fmt.Sprintf("line %d: %s: %v", v.Line, k.Value, err))
			}
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func decodeTime(dst *time.Time) func(*yaml.Node) error {
	return func(v *yaml.Node) error {
		if v.Kind != yaml.ScalarNode {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a time must be a scalar like 2026-01-01T00:00:00Z", v.Line)}}
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.Parse(layout, v.Value); err == nil {
				*dst = t
				return nil
			}
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid time %q: write RFC 3339 like 2026-01-01T00:00:00Z", v.Line, v.Value)}}
	}
}

func decodeInto(dst any) func(*yaml.Node) error {
	return func(v *yaml.Node) error { return v.Decode(dst) }
}

// UnmarshalYAML decodes metadata, reporting bad times with their line.
func (m *Metadata) UnmarshalYAML(n *yaml.Node) error {
	return decodeFields(n, "metadata", []yamlField{
		{"name", decodeInto(&m.Name)},
		{"version", decodeInto(&m.Version)},
		{"description", decodeInto(&m.Description)},
		{"issuedAt", decodeTime(&m.IssuedAt)},
		{"expiresAt", decodeTime(&m.ExpiresAt)},
	})
}

// UnmarshalYAML decodes an issuer key, reporting a bad notAfter with its
// line.
func (k *IssuerKey) UnmarshalYAML(n *yaml.Node) error {
	return decodeFields(n, "key", []yamlField{
		{"kid", decodeInto(&k.KID)},
		{"alg", decodeInto(&k.Alg)},
		{"publicKey", decodeInto(&k.PublicKey)},
		{"notAfter", decodeTime(&k.NotAfter)},
	})
}
