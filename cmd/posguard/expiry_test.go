package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy/bundle"
)

// after2031 is years after the example policy's expiresAt (2027-01-01):
// what ships must keep working when the calendar moves past its dates.
var after2031 = time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)

func TestShippedPolicyAfterItsExpiry(t *testing.T) {
	example := filepath.Join(policyTestdata, "chain-default.yaml")

	// lint: still a valid document, with a warning that says what to do.
	code, out, errs := runAt(t, after2031, "policy", "lint", example)
	if code != 0 || !strings.HasPrefix(out, example+": ok: chain-default version 1") ||
		!strings.Contains(errs, "warning: metadata.expiresAt: expired at 2027-01-01T00:00:00Z, before now (2031-03-01T09:00:00Z)") {
		t.Errorf("lint in 2031: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// eval: decisions depend on the request's time, never on the clock.
	req := filepath.Join(policyTestdata, "requests", "register-8th.json")
	code, out, errs = runAt(t, after2031, "policy", "eval", "--policy", example, "--request", req,
		"--history", filepath.Join(policyTestdata, "history", "shinjuku.json"))
	want, err := os.ReadFile(filepath.Join(policyTestdata, "decisions", "register-8th.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != string(want) {
		t.Errorf("eval in 2031: exit %d, stderr %q\n%s\nwant\n%s", code, errs, out, want)
	}

	// sign: an expired policy is not signed as it is (registers would
	// refuse it), and is with a fresh validity that a register takes.
	dir := hqKey(t)
	key := filepath.Join(dir, "hq-policy-1.key")
	code, out, errs = runAt(t, after2031, "policy", "sign", "--key", key, example)
	if code != 1 || out != "" || !strings.Contains(errs, "policy not signed: metadata.expiresAt: expired at 2027-01-01T00:00:00Z") {
		t.Errorf("sign expired: exit %d, %d bytes out, stderr %q", code, len(out), errs)
	}
	code, out, errs = runAt(t, after2031, "policy", "sign", "--key", key, "--valid-for", "720h", example)
	if code != 0 {
		t.Fatalf("sign --valid-for: exit %d: %s", code, errs)
	}
	trusted, err := bundle.LoadTrustedKey("hq-policy-1", filepath.Join(dir, "hq-policy-1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := bundle.VerifyPolicy([]byte(out), []bundle.TrustedKey{trusted}, "S001", 0, after2031)
	if err != nil {
		t.Fatalf("a register in 2031 refuses the re-stamped policy: %v", err)
	}
	if m := p.Metadata; !m.IssuedAt.Equal(after2031) || !m.ExpiresAt.Equal(after2031.Add(720*time.Hour)) {
		t.Errorf("re-stamped validity %v to %v, want %v to %v", m.IssuedAt, m.ExpiresAt, after2031, after2031.Add(720*time.Hour))
	}
	// Thirty days later the re-stamped policy has expired in turn.
	if _, err := bundle.VerifyPolicy([]byte(out), []bundle.TrustedKey{trusted}, "S001", 0, after2031.Add(720*time.Hour)); bundle.ReasonOf(err) != bundle.Expired {
		t.Errorf("re-stamped policy after its validity: %v, want expired", err)
	}
	if code, _, errs := runAt(t, after2031, "policy", "sign", "--key", key, "--valid-for", "10ms", example); code != 2 || !strings.Contains(errs, "--valid-for must be at least 1s") {
		t.Errorf("sign --valid-for 10ms: exit %d, stderr %q", code, errs)
	}
}
