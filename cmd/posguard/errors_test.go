package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// saidTwice returns what the first line of msg says twice: a prefix
// ("hq: hq:", "display: display:", "yaml: yaml:") or a file of paths
// ("open config X: open X:").
func saidTwice(msg string, paths []string) string {
	line, _, _ := strings.Cut(strings.TrimPrefix(msg, "posguard "), "\n")
	parts := strings.Split(line, ": ")
	for i := 1; i < len(parts); i++ {
		if parts[i] == parts[i-1] {
			return parts[i] + ": " + parts[i]
		}
	}
	for _, p := range paths {
		if strings.Contains(p, "/") && strings.Count(line, p) > 1 {
			return p
		}
	}
	return ""
}

// Each failure names what failed once: no prefix twice, no file path twice.
func TestErrorsSayItOnce(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	badYAML := filepath.Join(dir, "bad.yaml")
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badYAML, []byte("x: [\n"), 0o600)
	os.WriteFile(badJSON, []byte(`{"format": 1}`), 0o600)
	example := filepath.Join(policyTestdata, "chain-default.yaml")
	req := filepath.Join(policyTestdata, "requests", "register-8th.json")
	tests := []struct {
		name string
		args []string
		want string // the whole stderr
	}{
		{"agent config missing", []string{"agent", "--config", missing + ".yaml"},
			"posguard agent: config: open " + missing + ".yaml: no such file or directory\n"},
		{"agent config syntax", []string{"agent", "--config", badYAML},
			"posguard agent: config " + badYAML + ": document: line 1: did not find expected node content\n"},
		{"hq store in a missing directory", []string{"hq", "--broker", "tcp://127.0.0.1:1", "--state", filepath.Join(missing, "hq.db")},
			"posguard hq: HQ store: open " + filepath.Join(missing, "hq.db") + ": no such file or directory\n"},
		{"hq denylist key missing", []string{"hq", "--broker", "tcp://127.0.0.1:1", "--state", filepath.Join(dir, "hq.db"), "--denylist-key", missing + ".key"},
			"posguard hq: read key: open " + missing + ".key: no such file or directory\n"},
		{"display state in a missing directory", []string{"display", "--broker", "tcp://127.0.0.1:1", "--store", "S1", "--listen", "127.0.0.1:0", "--state", filepath.Join(missing, "d.json")},
			"posguard display: save state: open " + missing + "/"},
		{"eval history missing", []string{"policy", "eval", "--policy", example, "--request", req, "--history", missing + ".json"},
			"posguard policy: read history: open " + missing + ".json: no such file or directory\n"},
		{"eval history bad", []string{"policy", "eval", "--policy", example, "--request", req, "--history", badJSON},
			"posguard policy: " + badJSON + `: decode history: json: unknown field "format"` + "\n"},
		{"eval policy missing", []string{"policy", "eval", "--policy", missing + ".yaml", "--request", req},
			"posguard policy: open " + missing + ".yaml: no such file or directory\n"},
		{"eval policy broken", []string{"policy", "eval", "--policy", badYAML, "--request", req},
			"posguard policy " + badYAML + ": policy has 1 problem(s)\n  line 1: did not find expected node content\n"},
		{"sign key missing", []string{"policy", "sign", "--key", missing + ".key", example},
			"posguard policy: read key: open " + missing + ".key: no such file or directory\n"},
		{"keygen directory impossible", []string{"policy", "keygen", "--issuer", "w", "--kid", "k", "--out", filepath.Join(badYAML, "keys")},
			"posguard policy: keygen: create key directory: mkdir " + badYAML + ": not a directory\n"},
		{"token qr png impossible", []string{"token", "qr", "--png", filepath.Join(missing, "qr.png"), "hello"},
			"posguard token: write PNG: open " + filepath.Join(missing, "qr.png") + ": no such file or directory\n"},
		{"scanner-sim script missing", []string{"scanner-sim", missing},
			"posguard scanner-sim: script: open " + missing + ": no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runAt(t, time.Date(2026, 7, 4, 0, 0, 0, 0, time.UTC), tt.args...)
			if code != 1 || !strings.HasPrefix(errs, tt.want) {
				t.Errorf("exit %d, stderr\n%q\nwant it to start with\n%q", code, errs, tt.want)
			}
			if m := saidTwice(errs, tt.args); m != "" {
				t.Errorf("%q said twice in %q", m, errs)
			}
		})
	}
}

// The check above finds what the old messages said twice.
func TestSaidTwice(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"posguard hq: hq: no store\n", "hq: hq"},
		{"posguard display: display: save state: open /x/.d.json: no such file\n", "display: display"},
		{"posguard agent: config a.yaml: yaml: yaml: line 1: bad\n", "yaml: yaml"},
		{"posguard agent: open config /x/a.yaml: open /x/a.yaml: no such file\n", "/x/a.yaml"},
		{"posguard agent: config: open /x/a.yaml: no such file\n", ""},
		{"posguard policy /x/p.yaml: policy has 1 problem(s)\n  /x/p.yaml\n", ""},
	}
	for _, tt := range tests {
		if got := saidTwice(tt.msg, []string{"/x/a.yaml", "/x/p.yaml"}); got != tt.want {
			t.Errorf("saidTwice(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
