package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const policyTestdata = "../../policy/testdata"

func policyCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runAt(t, time.Time{}, args...)
}

func TestPolicyLint(t *testing.T) {
	example := filepath.Join(policyTestdata, "chain-default.yaml")
	code, out, errs := policyCLI(t, "policy", "lint", "--at", "2026-07-04T00:00:00Z", example)
	if code != 0 || out != example+": ok: chain-default version 1, 12 rules, expires 2027-01-01T00:00:00Z\n" {
		t.Errorf("lint example: code %d out %q err %q", code, out, errs)
	}

	expired := filepath.Join(t.TempDir(), "expired.yaml")
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte("expiresAt: 2027-01-01T00:00:00Z"), []byte("expiresAt: 2026-01-02T00:00:00Z"), 1)
	if err := os.WriteFile(expired, src, 0o644); err != nil {
		t.Fatal(err)
	}
	// Expired is a warning, not a problem: the document is still valid.
	code, out, errs = policyCLI(t, "policy", "lint", "--at", "2026-07-04T00:00:00+09:00", expired)
	if want := expired + ": warning: metadata.expiresAt: expired at 2026-01-02T00:00:00Z, before now (2026-07-03T15:00:00Z); registers refuse it unless it is signed with --valid-for\n"; code != 0 || errs != want ||
		out != expired+": ok: chain-default version 1, 12 rules, expires 2026-01-02T00:00:00Z\n" {
		t.Errorf("lint expired: code %d out %q err %q", code, out, errs)
	}

	broken, _ := filepath.Glob(filepath.Join(policyTestdata, "broken", "*.yaml"))
	if len(broken) < 10 {
		t.Fatalf("only %d broken policies", len(broken))
	}
	for _, f := range broken {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, _ := policyCLI(t, "policy", "lint", f)
			golden, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, l := range strings.SplitAfter(string(golden), "\n") {
				if l != "" {
					want.WriteString(f + ": " + l)
				}
			}
			if code != 1 || out != want.String() {
				t.Errorf("code %d, output\n%s\nwant\n%s", code, out, want.String())
			}
		})
	}
}

func TestPolicyEval(t *testing.T) {
	reqs, _ := filepath.Glob(filepath.Join(policyTestdata, "requests", "*.json"))
	if len(reqs) < 5 {
		t.Fatalf("only %d requests", len(reqs))
	}
	for _, r := range reqs {
		name := strings.TrimSuffix(filepath.Base(r), ".json")
		t.Run(name, func(t *testing.T) {
			code, out, errs := policyCLI(t, "policy", "eval",
				"--policy", filepath.Join(policyTestdata, "chain-default.yaml"),
				"--request", r,
				"--history", filepath.Join(policyTestdata, "history", "shinjuku.json"))
			want, err := os.ReadFile(filepath.Join(policyTestdata, "decisions", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 || out != string(want) {
				t.Errorf("code %d err %q\n%s\nwant\n%s", code, errs, out, want)
			}
		})
	}
	// Without --history the register has no memory: the 8th account looks
	// like the first, and nothing fires.
	code, out, _ := policyCLI(t, "policy", "eval",
		"--policy", filepath.Join(policyTestdata, "chain-default.yaml"),
		"--request", filepath.Join(policyTestdata, "requests", "register-8th.json"))
	if code != 0 || !strings.Contains(out, `"outcome": "allow"`) || !strings.Contains(out, `"rules": []`) {
		t.Errorf("eval without history: code %d\n%s", code, out)
	}
}

func TestPolicyCLIErrors(t *testing.T) {
	dir := t.TempDir()
	badReq := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badReq, []byte(`{"saleId": "x", "cart": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(policyTestdata, "chain-default.yaml")
	req := filepath.Join(policyTestdata, "requests", "onigiri-700.json")
	tests := []struct {
		name  string
		args  []string
		code  int
		inErr string
	}{
		{"lint no file", []string{"policy", "lint"}, 2, "lint needs exactly one policy FILE"},
		{"lint two files", []string{"policy", "lint", "a", "b"}, 2, "exactly one"},
		{"lint missing file", []string{"policy", "lint", filepath.Join(dir, "nope.yaml")}, 1, "nope.yaml"},
		{"lint bad time", []string{"policy", "lint", "--at", "soon", example}, 2, "--at: parsing time"},
		{"lint bad flag", []string{"policy", "lint", "--nope", example}, 2, "flag provided but not defined"},
		{"eval no flags", []string{"policy", "eval"}, 2, "eval needs --policy and --request"},
		{"eval stray arg", []string{"policy", "eval", "--policy", example, "--request", req, "extra"}, 2, "no arguments"},
		{"eval bad request", []string{"policy", "eval", "--policy", example, "--request", badReq}, 1, `unknown field "cart"`},
		{"eval missing request", []string{"policy", "eval", "--policy", example, "--request", filepath.Join(dir, "none.json")}, 1, "none.json"},
		{"eval broken policy", []string{"policy", "eval", "--policy", filepath.Join(policyTestdata, "broken", "cel.yaml"), "--request", req}, 1, "undeclared reference to 'carts'"},
		{"eval bad history", []string{"policy", "eval", "--policy", example, "--request", req, "--history", badReq}, 1, "history"},
		{"policy help", []string{"policy", "-h"}, 0, ""},
		{"policy unknown", []string{"policy", "frob"}, 2, `unknown command "frob"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := policyCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.inErr) {
				t.Errorf("code %d (want %d), stderr %q (want it to contain %q), stdout %q", code, tt.code, errs, tt.inErr, out)
			}
		})
	}
	_, out, _ := policyCLI(t, "policy", "-h")
	for _, c := range []string{"lint", "eval", "keygen"} {
		if !strings.Contains(out, c) {
			t.Errorf("policy help lacks %s:\n%s", c, out)
		}
	}
}
