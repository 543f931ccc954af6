// Package policydiff shows how two policy versions differ: each signed
// policy's canonical JSON (the payload registers verify) as YAML, the form
// policies are written in, and a unified diff of the two.
package policydiff

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"go.yaml.in/yaml/v3"
)

// MaxDocument bounds the JSON YAML converts: a signed policy's payload is
// at most policy.MaxDocumentSize (1 MiB), so anything larger is not one.
const MaxDocument = 1 << 20

// YAML renders a canonical policy JSON document as block YAML. The JSON's
// field order (fixed by policy.Canonical) is kept, so two versions of a
// policy line up field by field and the diff shows only what changed.
func YAML(doc []byte) ([]byte, error) {
	if len(doc) > MaxDocument {
		return nil, fmt.Errorf("policy document: %d bytes, limit %d", len(doc), MaxDocument)
	}
	var n yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&n); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	if len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("policy document: not a JSON object")
	}
	if bytes.TrimSpace(doc)[0] != '{' {
		return nil, errors.New("policy document: not JSON")
	}
	block(&n)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	return out.Bytes(), nil
}

// block drops the JSON's flow and quoting styles: the encoder then writes
// block YAML and quotes only the strings that need it.
func block(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		block(c)
	}
}

// Side is one version in a diff: its label (e.g. "chain-default v7") and
// canonical JSON document.
type Side struct {
	Label    string
	Document []byte
}

// Unified is the unified diff (3 lines of context) of the YAML of two
// policy documents; "" when they are the same.
func Unified(from, to Side) (string, error) {
	a, err := YAML(from.Document)
	if err != nil {
		return "", fmt.Errorf("%s: %w", from.Label, err)
	}
	b, err := YAML(to.Document)
	if err != nil {
		return "", fmt.Errorf("%s: %w", to.Label, err)
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: from.Label, ToFile: to.Label, Context: 3,
	})
}
