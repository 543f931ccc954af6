package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing the
// test. Its Fatal methods panic with the recorder, which run recovers.
type recorder struct {
	testing.TB
	failed, fatal bool
	msgs          []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.failed, r.fatal = true, true
	r.msgs = append(r.msgs, fmt.Sprint(args...))
	panic(r)
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.fatal = true, true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
	panic(r)
}

// run calls f with a fresh recorder and returns it, stopping a Fatal.
func run(t *testing.T, f func(tb testing.TB)) (r *recorder) {
	r = &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	f(r)
	return r
}

func TestCheck(t *testing.T) {
	if Update() {
		t.Skip("under -update Check rewrites instead of comparing")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "out.golden")
	if err := os.WriteFile(path, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := run(t, func(tb testing.TB) { Check(tb, path, []byte("hello\n")) }); r.failed {
		t.Errorf("equal bytes reported: %q", r.msgs)
	}

	r := run(t, func(tb testing.TB) { Check(tb, path, []byte("hullo\n")) })
	if !r.failed || r.fatal || len(r.msgs) != 1 {
		t.Fatalf("different bytes: failed=%v fatal=%v msgs=%q", r.failed, r.fatal, r.msgs)
	}
	for _, s := range []string{path, "hullo", "hello"} {
		if !strings.Contains(r.msgs[0], s) {
			t.Errorf("message %q does not contain %q", r.msgs[0], s)
		}
	}

	r = run(t, func(tb testing.TB) { Check(tb, filepath.Join(dir, "missing"), []byte("x")) })
	if !r.fatal || !strings.Contains(r.msgs[0], "-update") {
		t.Errorf("missing file: fatal=%v msgs=%q", r.fatal, r.msgs)
	}
}

func TestCheckJSON(t *testing.T) {
	if Update() {
		t.Skip("under -update Check rewrites instead of comparing")
	}
	path := filepath.Join(t.TempDir(), "v.json")
	want := "{\n  \"a\": \"<x&y>\",\n  \"b\": [\n    1,\n    2\n  ]\n}\n"
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	v := map[string]any{"a": "<x&y>", "b": []int{1, 2}}
	if r := run(t, func(tb testing.TB) { CheckJSON(tb, path, v) }); r.failed {
		t.Errorf("CheckJSON: %q", r.msgs)
	}
	v["b"] = []int{1, 3}
	if r := run(t, func(tb testing.TB) { CheckJSON(tb, path, v) }); !r.failed || r.fatal {
		t.Errorf("changed value not reported: %q", r.msgs)
	}
}

func TestUpdateWrites(t *testing.T) {
	old := *update
	*update = true
	defer func() { *update = old }()
	path := filepath.Join(t.TempDir(), "new", "dir", "out.golden")
	if r := run(t, func(tb testing.TB) { Check(tb, path, []byte("fresh")) }); r.failed {
		t.Fatalf("Check under -update: %q", r.msgs)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "fresh" {
		t.Errorf("written %q, %v", b, err)
	}
}
