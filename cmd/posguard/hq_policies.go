package main

import (
	"path/filepath"
	"strings"

	"github.com/posguard/posguard/policy/bundle"
)

// loadPolicyKey reads a --policy-trusted-key value, [KID=]FILE; the kid
// defaults to the file name less .pub.pem (or .pem), as keygen names it.
func loadPolicyKey(v string) (bundle.TrustedKey, error) {
	kid, file, ok := strings.Cut(v, "=")
	if !ok {
		file = v
		kid = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".pem"), ".pub")
	}
	return bundle.LoadTrustedKey(kid, file)
}
