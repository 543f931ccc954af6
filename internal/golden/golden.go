// Package golden compares test output with golden files in testdata/.
//
// Importing it registers the -update flag, shared by every test in the
// binary: with -update, Check rewrites the golden file instead of failing.
// A test package that imports golden must not register its own "update"
// flag.
package golden

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Update reports whether -update was given, for tests that regenerate
// other artefacts under it.
func Update() bool { return *update }

// Check compares got with the file at path. With -update it first writes
// got to path, creating its directory.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file\n--- got\n%s\n--- want\n%s", path, show(got), show(want))
	}
}

// CheckJSON encodes v as JSON indented by two spaces, without HTML
// escaping, with a trailing newline, and checks it like Check.
func CheckJSON(t testing.TB, path string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %s: %v", path, err)
	}
	Check(t, path, buf.Bytes())
}

// show prints text as it is and binary as hex.
func show(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return hex.EncodeToString(b)
}
