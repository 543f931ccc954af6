package policy

import _ "embed"

// exampleYAML is the commented example policy, shipped in the binary so
// `posguard demo` needs no files on disk.
//
//go:embed testdata/chain-default.yaml
var exampleYAML []byte

// Example returns the text of the example policy (testdata/chain-default.yaml).
func Example() []byte { return append([]byte(nil), exampleYAML...) }
