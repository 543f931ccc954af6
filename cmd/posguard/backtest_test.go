package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const backtestTestdata = "../../policy/backtest/testdata"

// backtestCLI runs `posguard policy test` in-process.
func backtestCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, stdin, append([]string{"policy", "test"}, args...)...)
}

func TestPolicyTestTable(t *testing.T) {
	events := filepath.Join(backtestTestdata, "7pay.jsonl")
	code, out, errs := backtestCLI(t, "", "--policy", filepath.Join(policyTestdata, "unscored.yaml"), "--events", events)
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join(backtestTestdata, "7pay.table.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("table differs from %s:\n%s", "7pay.table.golden", out)
	}
	if errs != "" {
		t.Errorf("stderr %q: no progress expected when stderr is not a terminal", errs)
	}
}

func TestPolicyTestJSONFromStdin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(backtestTestdata, "7pay.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := backtestCLI(t, string(data), "--policy", filepath.Join(policyTestdata, "unscored.yaml"), "--events", "-", "--json", "--progress")
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join(backtestTestdata, "7pay.json.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("JSON differs from 7pay.json.golden:\n%s", out)
	}
	if !strings.HasPrefix(errs, "read: ") {
		t.Errorf("--progress printed %q, want a progress line", errs)
	}
}

func TestPolicyTestBaselineAndDenylist(t *testing.T) {
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny.txt")
	if err := os.WriteFile(deny, []byte("# flagged by HQ\nacct-crew-1\n\nshopper-03\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(policyTestdata, "unscored.yaml")
	code, out, errs := backtestCLI(t, "", "--policy", example, "--baseline", example, "--denylist", deny,
		"--events", filepath.Join(backtestTestdata, "7pay.jsonl"), "--json")
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	var rep struct {
		Baseline    struct{ Kind, Name string }
		Transitions []json.RawMessage
		Rules       []struct {
			ID            string
			Enforced      int
			BaselineFires int
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Baseline.Kind != "policy" || rep.Baseline.Name != "chain-default" || len(rep.Transitions) != 0 {
		t.Errorf("baseline %+v, %d transitions: want the same policy and none", rep.Baseline, len(rep.Transitions))
	}
	for _, r := range rep.Rules {
		if r.ID == "denylist" && (r.Enforced != 2 || r.BaselineFires != 2) {
			t.Errorf("denylist rule %+v: want 2 fires on both sides", r)
		}
	}
}

func TestPolicyTestBadLines(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(backtestTestdata, "7pay.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(policyTestdata, "unscored.yaml")
	code, out, _ := backtestCLI(t, "garbage\n"+string(data), "--policy", example, "--events", "-")
	if code != 0 || !strings.Contains(out, "1 bad lines") || !strings.Contains(out, "  line 1: parse event: ") {
		t.Errorf("one bad line among good ones: code %d, out:\n%s", code, out)
	}
	code, out, errs := backtestCLI(t, "garbage\nmore garbage\n", "--policy", example, "--events", "-")
	if code != 1 || !strings.Contains(errs, "no decision event could be replayed (2 lines, 2 bad)") || !strings.Contains(out, "line 2: ") {
		t.Errorf("nothing replayable: code %d, out %q, err %q", code, out, errs)
	}
}

func TestPolicyTestUsage(t *testing.T) {
	example := filepath.Join(policyTestdata, "unscored.yaml")
	events := filepath.Join(backtestTestdata, "7pay.jsonl")
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no flags", nil, 2, "test needs --policy and --events"},
		{"no events", []string{"--policy", example}, 2, "test needs --policy and --events"},
		{"argument", []string{"--policy", example, "--events", events, "extra"}, 2, "test takes no arguments"},
		{"bad flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"bad retention", []string{"--policy", example, "--events", events, "--retention", "-1h"}, 2, "--retention must be > 0"},
		{"missing events", []string{"--policy", example, "--events", "nope.jsonl"}, 1, "posguard policy: events: open nope.jsonl: no such file"},
		{"broken policy", []string{"--policy", filepath.Join(policyTestdata, "broken/cel.yaml"), "--events", events}, 1, "policy ../../policy/testdata/broken/cel.yaml"},
		{"broken baseline", []string{"--policy", example, "--baseline", filepath.Join(policyTestdata, "broken/empty.yaml"), "--events", events}, 1, "baseline: policy"},
		{"missing denylist", []string{"--policy", example, "--denylist", "nope.txt", "--events", events}, 1, "posguard policy: denylist: open nope.txt: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := backtestCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.err) {
				t.Errorf("code %d stderr %q, want %d with %q", code, errs, tt.code, tt.err)
			}
		})
	}
	// -h describes every flag.
	_, help, _ := backtestCLI(t, "", "-h")
	for _, f := range []string{"-policy", "-events", "-baseline", "-denylist", "-retention", "-json", "-progress"} {
		if !strings.Contains(help, f) {
			t.Errorf("help does not describe %s", f)
		}
	}
}

func TestPolicyTestLabels(t *testing.T) {
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.jsonl")
	if err := os.WriteFile(labels, []byte(`{"account":"acct-crew-1","label":"legit","case":"C-1"}`+"\n"+
		`{"account":"shopper-08","label":"fraud"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--policy", filepath.Join(policyTestdata, "chain-default.yaml"), "--events", filepath.Join(backtestTestdata, "7pay.jsonl")}
	code, out, errs := backtestCLI(t, "", append(args, "--labels", labels)...)
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	for _, want := range []string{
		"labels file: 2 accounts (1 fraud, 1 legit), 2 of them in these events; 2 sales labelled, 0 made before their label's time (not scored)\n",
		"labelled sales: 11 fraud (¥284,400), 13 legit (¥63,100)\n", // crew-1 now legit, shopper-08 fraud,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"account":"a","label":"fraud"}`+"\n"+`{"account":"a","label":"legit"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = backtestCLI(t, "", append(args, "--labels", bad)...)
	if code != 1 || out != "" || !strings.Contains(errs, bad+`: read labels: line 2: account "a" is labelled again (first on line 1): one line per account`) {
		t.Errorf("bad labels: code %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = backtestCLI(t, "", append(args, "--labels", filepath.Join(dir, "missing.jsonl"))...)
	if code != 1 || !strings.Contains(errs, "labels: open") {
		t.Errorf("missing labels: code %d, stderr %q", code, errs)
	}
}

func TestPolicyTestHTML(t *testing.T) {
	page := filepath.Join(t.TempDir(), "report.html")
	code, out, errs := backtestCLI(t, "", "--policy", filepath.Join(policyTestdata, "chain-default.yaml"),
		"--events", filepath.Join(backtestTestdata, "7pay.jsonl"), "--html", page)
	if code != 0 || !strings.HasPrefix(out, "policy chain-default v1") {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<canvas id=\"chart-sweep\"", "Chart.js v4", "Backtest of chain-default v1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	code, _, errs = backtestCLI(t, "", "--policy", filepath.Join(policyTestdata, "chain-default.yaml"),
		"--events", filepath.Join(backtestTestdata, "7pay.jsonl"), "--html", filepath.Join(t.TempDir(), "no", "dir", "r.html"))
	if code != 1 || !strings.Contains(errs, "write HTML report: ") {
		t.Errorf("unwritable page: code %d, stderr %q", code, errs)
	}
	code, _, errs = backtestCLI(t, "", "--policy", filepath.Join(policyTestdata, "chain-default.yaml"),
		"--events", filepath.Join(backtestTestdata, "7pay.jsonl"), "--html", "-")
	if code != 2 || !strings.Contains(errs, "--html needs a file name") {
		t.Errorf("--html -: code %d, stderr %q", code, errs)
	}
}

// --lang words the listed sales' reasons; anything but ja or en is a
// usage error.
func TestPolicyTestLang(t *testing.T) {
	args := []string{"--policy", filepath.Join(policyTestdata, "unscored.yaml"), "--events", filepath.Join(backtestTestdata, "7pay.jsonl")}
	code, out, errs := backtestCLI(t, "", append(args, "--lang", "en")...)
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, errs)
	}
	for _, want := range []string{
		"largest changed sales (12 of 12)\n  2026-07-04 02:30  S014/R1  acct-victim-02  ¥100,000  allow → deny  fraud\n      · sale ¥100,000 > limit ¥10,000\n",
		"largest sales held for review (5 of 5)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--lang en table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "上限") {
		t.Error("--lang en table has Japanese reasons")
	}
	if code, _, errs := backtestCLI(t, "", append(args, "--lang", "fr")...); code != 2 || !strings.Contains(errs, "--lang must be ja or en") {
		t.Errorf("--lang fr: code %d, stderr %q", code, errs)
	}
}
