package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/posguard/posguard/cmd/internal/cli"
)

func runAgentCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, args)
	return code, out.String(), errb.String()
}

// The register's binary lists exactly the register's commands, under its
// own name, and refuses the rest as unknown.
func TestCommands(t *testing.T) {
	code, out, errs := runAgentCLI(t, "help")
	if code != 0 || errs != "" || !strings.Contains(out, "Usage: posguard-agent <command>") {
		t.Fatalf("help: exit %d, stderr %q, stdout %q", code, errs, out)
	}
	var names []string
	_, list, _ := strings.Cut(out, "Commands:\n")
	for _, l := range strings.Split(list, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		names = append(names, strings.Fields(l)[0])
	}
	if want := []string{"agent", "policy", "ports", "token", "version"}; !slices.Equal(names, want) {
		t.Errorf("commands %q, want %q", names, want)
	}
	for _, args := range [][]string{{"hq"}, {"display"}, {"demo"}, {"scanner-sim"}} {
		if code, _, errs := runAgentCLI(t, args...); code != 2 || !strings.Contains(errs, "posguard-agent: unknown command") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	for _, args := range [][]string{{"policy", "sign"}, {"policy", "push"}, {"token", "mint"}} {
		if code, _, errs := runAgentCLI(t, args...); code != 2 || !strings.Contains(errs, "unknown command") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	for _, c := range []string{"agent", "ports", "policy lint", "token inspect", "version"} {
		code, out, errs := runAgentCLI(t, append(strings.Fields(c), "-h")...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "Usage: posguard-agent "+c) {
			t.Errorf("%s -h: exit %d, stderr %q, stdout %q", c, code, errs, out)
		}
	}
}

func TestVersionNamesTheBinary(t *testing.T) {
	code, out, errs := runAgentCLI(t, "version")
	if code != 0 || errs != "" || !strings.HasPrefix(out, "posguard-agent ") {
		t.Fatalf("version: exit %d, stderr %q, stdout %q", code, errs, out)
	}
}

// policy lint works the same as in posguard: the implementation is shared.
func TestPolicyLint(t *testing.T) {
	example := filepath.Join("..", "..", "policy", "testdata", "chain-default.yaml")
	code, out, errs := runAgentCLI(t, "policy", "lint", "--at", "2026-07-01T00:00:00Z", example)
	if code != 0 || !strings.HasPrefix(out, example+": ok: chain-default version 1") {
		t.Errorf("lint: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("x: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runAgentCLI(t, "policy", "lint", "--at", "x", bad); code != 2 || !strings.Contains(errs, "posguard-agent policy: --at") {
		t.Errorf("lint --at x: exit %d, stderr %q", code, errs)
	}
}
