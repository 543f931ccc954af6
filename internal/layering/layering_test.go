// Package layering holds no code: its test checks the import rules of
// docs/DESIGN.md ("Package layering") with `go list`, so a change that makes HQ or the
// display depend on the register daemon, or the policy engine depend on any
// program, fails here instead of in review.
package layering

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/posguard/posguard"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func list(t *testing.T, deps bool, patterns ...string) []pkg {
	t.Helper()
	args := []string{"list", "-json=ImportPath,Imports,Deps"}
	if deps {
		args = append(args, "-deps")
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %v: %v\n%s", patterns, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func under(path, dir string) bool {
	p := module + "/" + dir
	return path == p || strings.HasPrefix(path, p+"/")
}

func TestOnlyProgramsImportAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, p := range list(t, false, module+"/...") {
		if under(p.ImportPath, "agent") || under(p.ImportPath, "cmd") || under(p.ImportPath, "demo") {
			continue
		}
		for _, imp := range p.Imports {
			if under(imp, "agent") {
				t.Errorf("%s imports %s: only agent/, cmd/ and demo/ may import the register daemon; the contract lives in wire/ and event/", p.ImportPath, imp)
			}
		}
	}
}

func TestPolicyImportsNoProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, p := range list(t, false, module+"/policy/...") {
		for _, imp := range p.Imports {
			for _, prog := range []string{"agent", "hq", "display"} {
				if under(imp, prog) {
					t.Errorf("%s imports %s: the policy engine must not depend on a program", p.ImportPath, imp)
				}
			}
		}
	}
}

func TestDisplayDoesNotLinkCEL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, p := range list(t, true, module+"/display") {
		if strings.HasPrefix(p.ImportPath, "cel.dev/") || strings.HasPrefix(p.ImportPath, "github.com/google/cel-go") {
			t.Errorf("the display links %s: it reads events, it must not carry the policy engine", p.ImportPath)
		}
	}
}

// TestReasonTemplatesStayLight: policy/reason, which the display, HQ and
// the agent render reasons with, depends on nothing of the module but the
// contract package policy/sale, so it never brings the engine along.
func TestReasonTemplatesStayLight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	for _, p := range list(t, true, module+"/policy/reason") {
		if strings.HasPrefix(p.ImportPath, module+"/") && p.ImportPath != module+"/policy/reason" && p.ImportPath != module+"/policy/sale" {
			t.Errorf("policy/reason depends on %s: it may import only policy/sale", p.ImportPath)
		}
		if strings.HasPrefix(p.ImportPath, "cel.dev/") {
			t.Errorf("policy/reason links %s", p.ImportPath)
		}
	}
}

// The register's binary stays small and carries nothing of HQ's side: no
// PostgreSQL driver, no MQTT broker, no display, no HQ, no demo, no
// browser automation (docs/DESIGN.md, "Programs").
func TestAgentBinaryLinksNoServerSide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	forbidden := []struct{ prefix, why string }{
		{"github.com/jackc/", "the PostgreSQL driver is HQ's"},
		{"github.com/mochi-mqtt/server", "the embedded broker is HQ's"},
		{"github.com/chromedp/", "browser automation is the demo's and the tests'"},
	}
	pkgs := list(t, true, module+"/cmd/posguard-agent")
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages for cmd/posguard-agent", len(pkgs))
	}
	for _, p := range pkgs {
		for _, prog := range []string{"hq", "display", "demo"} {
			if under(p.ImportPath, prog) {
				t.Errorf("posguard-agent links %s: the register's binary must not carry the %s", p.ImportPath, prog)
			}
		}
		for _, f := range forbidden {
			if strings.HasPrefix(p.ImportPath, f.prefix) {
				t.Errorf("posguard-agent links %s: %s", p.ImportPath, f.why)
			}
		}
	}
}

// The packager is a release tool: no shipped binary carries nfpm and its
// dependencies (docs/DESIGN.md, "Package layering").
func TestBinariesLinkNoPackager(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	pkgs := list(t, true, module+"/cmd/...")
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages for cmd/...", len(pkgs))
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, "github.com/goreleaser/") || under(p.ImportPath, "internal/pkgbuild") {
			t.Errorf("a binary under cmd/ links %s: packaging belongs to scripts/pkg", p.ImportPath)
		}
	}
}
