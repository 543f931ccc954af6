package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/posguard/posguard/policy/token"
)

// runCLI runs posguard in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return cliIn(t, stdin, time.Time{}, args...)
}

// keygenPolicy makes an issuer key in dir and a policy file trusting it.
func keygenPolicy(t *testing.T, dir, alg string) (keyPath, policyPath string) {
	t.Helper()
	code, out, stderr := runCLI(t, "", "policy", "keygen", "--issuer", "posguard-wallet", "--kid", "w1", "--alg", alg, "--out", dir)
	if code != 0 {
		t.Fatalf("keygen exit %d: %s", code, stderr)
	}
	var indented strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if line != "" {
			indented.WriteString("  " + line)
		}
	}
	doc := `apiVersion: posguard/v1
kind: Policy
metadata:
  name: token-cli-test
  version: 1
  issuedAt: 2026-01-01T00:00:00Z
  expiresAt: 2036-01-01T00:00:00Z
tokens:
` + indented.String() + `  opaque:
    - name: paypay
      pattern: "28[0-9]{16}"
      minLength: 18
      maxLength: 18
  maxAge: 5m
  clockSkew: 30s
rules: []
failMode:
  action: review
`
	policyPath = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "w1.key"), policyPath
}

type inspectJSON struct {
	Kind       string         `json:"kind"`
	WellFormed bool           `json:"wellFormed"`
	Verified   bool           `json:"verified"`
	Valid      *bool          `json:"valid"`
	Reason     string         `json:"reason"`
	Claims     map[string]any `json:"claims"`
	TLV        []struct {
		Tag      string            `json:"tag"`
		Value    string            `json:"value"`
		Children []json.RawMessage `json:"children"`
	} `json:"tlv"`
}

func inspect(t *testing.T, wantCode int, args ...string) inspectJSON {
	t.Helper()
	code, out, stderr := runCLI(t, "", append([]string{"token", "inspect", "--json"}, args...)...)
	if code != wantCode {
		t.Fatalf("inspect %v: exit %d, want %d; stderr %s", args, code, wantCode, stderr)
	}
	var r inspectJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("inspect output %q: %v", out, err)
	}
	return r
}

func TestTokenKeygenFiles(t *testing.T) {
	dir := t.TempDir()
	keygenPolicy(t, dir, "ES256")
	st, err := os.Stat(filepath.Join(dir, "w1.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	for _, f := range []string{"w1.pub.pem", "w1.issuer.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// A second keygen must not clobber the key.
	if code, _, stderr := runCLI(t, "", "policy", "keygen", "--issuer", "x", "--kid", "w1", "--out", dir); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("overwrite: exit %d %s", code, stderr)
	}
}

func TestTokenMintInspectVerify(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			key, pol := keygenPolicy(t, dir, alg)
			code, out, stderr := runCLI(t, "", "token", "mint", "--key", key, "--issuer", "posguard-wallet", "--sub", "acct-42",
				"--topup-at", "30m", "--topup-amount", "90000", "--foreign-login", "--device", "deadbeef", "--ttl", "2m")
			if code != 0 {
				t.Fatalf("mint exit %d: %s", code, stderr)
			}
			text := strings.TrimSpace(out)
			if !strings.HasPrefix(text, token.PG1Prefix) {
				t.Fatalf("mint printed %q", out)
			}

			// Without --policy nothing is checked: decoded, not "valid".
			r := inspect(t, 0, text)
			if r.Kind != "pg1" || !r.WellFormed || r.Verified || r.Valid != nil || r.Claims["sub"] != "acct-42" || r.Claims["alg"] != alg || r.Claims["tm"] != 90000.0 || r.Claims["fl"] != true || r.Claims["dv"] != "deadbeef" {
				t.Errorf("decoded %+v", r)
			}

			r = inspect(t, 0, "--policy", pol, text)
			if !r.Verified || r.Valid == nil || !*r.Valid || r.Reason != "" || r.Claims["account"] != "acct-42" {
				t.Errorf("verified %+v", r)
			}
			// The same token later than its expiry, through stdin.
			code, out, _ = runCLI(t, text+"\n", "token", "inspect", "--json", "--policy", pol, "--at", "2035-01-01T00:00:00Z", "-")
			var late inspectJSON
			if code != 1 || json.Unmarshal([]byte(out), &late) != nil || !late.Verified || late.Valid == nil || *late.Valid || !late.WellFormed || late.Reason != "expired" {
				t.Errorf("expired: exit %d %s", code, out)
			}
			// A policy trusting another key: the signature fails.
			_, other := keygenPolicy(t, t.TempDir(), alg)
			if r := inspect(t, 1, "--policy", other, text); r.Valid == nil || *r.Valid || r.Reason != "bad_signature" || r.Kind != "pg1" {
				t.Errorf("other key: %+v", r)
			}
		})
	}
}

func TestTokenInspectEMVAndOpaque(t *testing.T) {
	// mvallim/emv-qrcode DecoderCpmTest (encoded2): two applications and a
	// common data template with a nested 64.
	const emv = "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MWETTwegAAAAZmZmUAhQcm9kdWN0MmJJWggSNFZ4kBI0WF8gDkNBUkRIT0xERVIvRU1WXy0IcnVlc2RlZW5kIZ8QBwYBCgMAAACfJghYT9OF+iNLzJ82AgABnzcEbVjvEw=="
	r := inspect(t, 0, emv)
	if r.Kind != "emv-cpm" || !r.WellFormed || r.Verified || r.Valid != nil || len(r.TLV) != 4 || r.TLV[0].Tag != "85" || r.TLV[0].Value != "4350563031" || r.TLV[1].Tag != "61" || len(r.TLV[1].Children) != 2 {
		t.Fatalf("emv %+v", r)
	}
	if r.Claims["atc"] != 1.0 || r.Claims["panLast4"] != "3458" {
		t.Errorf("claims %+v", r.Claims)
	}
	code, text, _ := runCLI(t, "", "token", "inspect", emv)
	if code != 0 || strings.Contains(text, "1234567890123458") || !strings.Contains(text, "************3458") || !strings.Contains(text, "    9F36 0001") {
		t.Errorf("text output:\n%s", text)
	}

	_, pol := keygenPolicy(t, t.TempDir(), "EdDSA")
	if r := inspect(t, 0, "--policy", pol, "281234567890123456"); r.Kind != "opaque" || r.Claims["wallet"] != "paypay" {
		t.Errorf("opaque %+v", r)
	}
	if r := inspect(t, 1, "--policy", pol, "hello"); r.Kind != "unknown" || r.Reason != "unknown" || !r.Verified || r.Valid == nil || *r.Valid {
		t.Errorf("unknown %+v", r)
	}
	if r := inspect(t, 1, "281234567890123456"); r.Kind != "unknown" || r.WellFormed || r.Valid != nil {
		t.Errorf("opaque without policy %+v", r)
	}
	if r := inspect(t, 1, "PG1:bb8"); r.Kind != "pg1" || r.Reason != "malformed" || r.WellFormed || r.Verified || r.Valid != nil || r.Claims != nil {
		t.Errorf("malformed %+v", r)
	}
}

// The --json fields are documented where a user looks for them.
func TestTokenInspectHelpDocumentsJSON(t *testing.T) {
	code, out, stderr := runCLI(t, "", "token", "inspect", "-h")
	for _, f := range []string{"wellFormed", "verified", "valid", "reason", "claims", "tlv"} {
		if code != 0 || !strings.Contains(out+stderr, "\n  "+f+" ") {
			t.Errorf("token inspect -h (exit %d) does not document %q", code, f)
		}
	}
}

func TestTokenQR(t *testing.T) {
	const text = "PG1:6BFOXN*TS0BI$ZDFRH"
	dir := t.TempDir()
	pngPath := filepath.Join(dir, "t.png")
	if code, _, stderr := runCLI(t, "", "token", "qr", text, "--png", pngPath, "--size", "300"); code != 0 {
		t.Fatalf("qr --png: %d %s", code, stderr)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 300 || b.Dy() != 300 {
		t.Errorf("PNG is %v, want 300x300", b)
	}

	// The terminal drawing, read back module by module, is the QR symbol
	// with its quiet zone: light modules are the drawn halves.
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	code, out, _ := runCLI(t, text, "token", "qr", "-")
	if code != 0 {
		t.Fatalf("qr exit %d", code)
	}
	if !strings.Contains(out, "\x1b[97;40m") {
		t.Error("terminal QR without forced colours")
	}
	lines := strings.Split(strings.TrimSuffix(regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, ""), "\n"), "\n")
	if len(lines) != (len(want)+1)/2 {
		t.Fatalf("%d lines for %d module rows", len(lines), len(want))
	}
	for y, line := range lines {
		cells := []rune(line)
		if len(cells) != len(want) {
			t.Fatalf("line %d has %d cells, want %d", y, len(cells), len(want))
		}
		for x, c := range cells {
			top := c == '█' || c == '▀'
			bottom := c == '█' || c == '▄'
			if top != !want[2*y][x] {
				t.Fatalf("module (%d,%d) wrong", x, 2*y)
			}
			if 2*y+1 < len(want) && bottom != !want[2*y+1][x] {
				t.Fatalf("module (%d,%d) wrong", x, 2*y+1)
			}
		}
	}
	// Quiet zone: the first line is all light.
	if strings.Trim(lines[0], "█") != "" {
		t.Error("no quiet zone on top")
	}
}

func TestTokenUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"token", "mint", "--issuer", "x"}, 2},
		{[]string{"token", "mint", "--bogus"}, 2},
		{[]string{"token", "mint", "--key", "k", "--issuer", "x", "--sub", "y", "--topup-at", "yesterday"}, 2},
		{[]string{"token", "mint", "--key", "/nonexistent.key", "--issuer", "x", "--sub", "y"}, 1},
		{[]string{"token", "inspect"}, 2},
		{[]string{"token", "inspect", "a", "b"}, 2},
		{[]string{"token", "inspect", "--policy", "/nonexistent.yaml", "PG1:BB8"}, 1},
		{[]string{"token", "qr"}, 2},
		{[]string{"token", "qr", "x", "--size", "0"}, 2},
		{[]string{"policy", "keygen", "--issuer", "x", "--kid", "k", "--out", "d", "--alg", "RS256"}, 2},
		{[]string{"policy", "keygen", "--kid", "k"}, 2},
		{[]string{"token", "mint", "-h"}, 0},
		{[]string{"token", "inspect", "-h"}, 0},
		{[]string{"token", "qr", "-h"}, 0},
		{[]string{"policy", "keygen", "-h"}, 0},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, stderr)
		}
	}
	// -h describes every flag.
	_, help, _ := runCLI(t, "", "token", "mint", "-h")
	for _, f := range []string{"-key", "-issuer", "-sub", "-ttl", "-topup-at", "-topup-amount", "-device-since", "-account-since", "-foreign-login"} {
		if !strings.Contains(help, f) {
			t.Errorf("mint -h lacks %s", f)
		}
	}
}
