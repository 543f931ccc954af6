package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The test binary is a linux Go binary with build information, as the
// agent is; it is packaged, never run.
func TestRun(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"-unit", "../posguard-agent.service", "-config", "../agent.example.yaml", "-license", "../../LICENSE"}
	t.Setenv("SOURCE_DATE_EPOCH", "1795996800")

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(append(paths, "-out", out, "-version", "v1.2.0", exe), &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	// The architecture is this machine's: the binary's build information.
	arch := map[string][2]string{"amd64": {"amd64", "x86_64"}, "arm64": {"arm64", "aarch64"}, "386": {"i386", "i386"}}[runtime.GOARCH]
	if arch[0] == "" {
		t.Skipf("no expected package names for GOARCH %s", runtime.GOARCH)
	}
	want := []string{filepath.Join(out, "posguard-agent_1.2.0-1_"+arch[0]+".deb"), filepath.Join(out, "posguard-agent-1.2.0-1."+arch[1]+".rpm")}
	if got := strings.Fields(stdout.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("printed %q, want %q", got, want)
	}
	for _, p := range want {
		if fi, err := os.Stat(p); err != nil || fi.Size() < 1000 {
			t.Errorf("%s: %v", p, err)
		}
	}

	tests := []struct {
		name  string
		args  []string
		usage bool
		err   string
	}{
		{"no binary", paths, true, "want one BINARY argument, got 0"},
		{"bad flag", []string{"-colour"}, true, "flag provided but not defined: -colour"},
		{"unstamped binary", append(paths, "-out", out, exe), false, "no module version"},
		{"not a Go binary", append(paths, "-out", out, "../../LICENSE"), false, "read build information of ../../LICENSE"},
		{"unit without the lines to rewrite", append([]string{"-unit", "../../LICENSE", "-version", "v1.2.0", "-out", out}, exe), false, "no \"# Installed by scripts/install-agent.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, new(bytes.Buffer), new(bytes.Buffer))
			if err == nil || !strings.Contains(err.Error(), tt.err) || errors.Is(err, errUsage) != tt.usage {
				t.Fatalf("run error = %v, want one containing %q (usage error: %v)", err, tt.err, tt.usage)
			}
		})
	}

	var help bytes.Buffer
	if err := run([]string{"-h"}, &help, new(bytes.Buffer)); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "Usage: go run ./scripts/pkg") {
		t.Errorf("-h: %v, printed %q", err, help.String())
	}
}
