package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The command writes the committed sample byte for byte (the package test
// keeps the sample in step with the generator), and policy test reads it.
func TestPolicyGenEventsSample(t *testing.T) {
	dir := t.TempDir()
	events, labels := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "labels.jsonl")
	code, out, errs := runCLI(t, "", "policy", "gen-events", "--seed", "1", "--days", "2", "--stores", "2", "--sales-per-day", "30",
		"--out", events, "--labels", labels)
	if code != 0 || out != "" {
		t.Fatalf("code %d, stdout %q, stderr %s", code, out, errs)
	}
	if !strings.Contains(errs, " sales over 2 days at 2 stores: ") || !strings.Contains(errs, " crew runs, ") {
		t.Errorf("summary %q", errs)
	}
	for got, want := range map[string]string{events: "gen-sample.jsonl", labels: "gen-sample.labels.jsonl"} {
		g, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(filepath.Join(backtestTestdata, want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s differs from testdata/%s", got, want)
		}
	}

	code, out, errs = backtestCLI(t, "", "--policy", filepath.Join(policyTestdata, "chain-default.yaml"), "--events", events, "--labels", labels)
	if code != 0 || !strings.Contains(out, "labels file: ") || !strings.Contains(out, "\nprecision ") {
		t.Errorf("policy test on the generated data: code %d, stderr %s\n%s", code, errs, out)
	}

	// To standard output, with progress on stderr.
	code, out, errs = runCLI(t, "", "policy", "gen-events", "--seed", "1", "--days", "2", "--stores", "2", "--sales-per-day", "30", "--out", "-", "--progress")
	w, _ := os.ReadFile(filepath.Join(backtestTestdata, "gen-sample.jsonl"))
	if code != 0 || out != string(w) || !strings.HasPrefix(errs, "generate: 1 of 2 days (50%)\n") {
		t.Errorf("to stdout: code %d, %d bytes, stderr %q", code, len(out), errs)
	}
}

func TestPolicyGenEventsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "gen-events needs --out"},
		{[]string{"--out", "-", "--labels", "-"}, "--labels needs a file of its own"},
		{[]string{"--out", "x", "--days", "0"}, "--days 0: want 1 to 366"},
		{[]string{"--out", "x", "--stores", "20001"}, "--stores 20001: want 1 to 20000"},
		{[]string{"--out", "x", "--registers-per-store", "0"}, "--registers-per-store 0: want 1 to 20"},
		{[]string{"--out", "x", "--start", "July"}, `--start "July": want a date as YYYY-MM-DD`},
		{[]string{"--out", "x", "extra"}, "gen-events takes no arguments"},
	} {
		code, _, errs := runCLI(t, "", append([]string{"policy", "gen-events"}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.err) {
			t.Errorf("%q: code %d, stderr %q, want 2 and %q", tc.args, code, errs, tc.err)
		}
	}
	// A file that cannot be written: exit 1, and no events file left half done.
	events := filepath.Join(dir, "events.jsonl")
	code, _, errs := runCLI(t, "", "policy", "gen-events", "--days", "1", "--stores", "1", "--out", events, "--labels", filepath.Join(dir, "no", "such", "dir"))
	if code != 1 || !strings.Contains(errs, "labels: open") {
		t.Errorf("code %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(events); !os.IsNotExist(err) {
		t.Errorf("events file left behind: %v", err)
	}
	code, out, _ := runCLI(t, "", "policy", "gen-events", "-h")
	if code != 0 || !strings.Contains(out, "-registers-per-store") || !strings.Contains(out, "byte-identical") {
		t.Errorf("help: code %d\n%s", code, out)
	}
}
