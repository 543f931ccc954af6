package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
)

// beforeExpiry is inside the example policy's validity.
var beforeExpiry = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func hqKey(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	if code, _, stderr := runCLI(t, "", "policy", "keygen", "--use", "hq", "--kid", "hq-policy-1", "--alg", "EdDSA", "--out", dir); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	return dir
}

func TestPolicySign(t *testing.T) {
	dir := hqKey(t)
	code, out, stderr := runAt(t, beforeExpiry, "policy", "sign", "--key", filepath.Join(dir, "hq-policy-1.key"), "../../policy/testdata/chain-default.yaml")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	trusted, err := bundle.LoadTrustedKey("hq-policy-1", filepath.Join(dir, "hq-policy-1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := bundle.VerifyPolicy([]byte(out), []bundle.TrustedKey{trusted}, "s1", 0, beforeExpiry)
	if err != nil {
		t.Fatalf("signed output does not verify: %v", err)
	}
	if p.Metadata.Name != "chain-default" {
		t.Fatalf("signed policy %q", p.Metadata.Name)
	}

	// A broken policy is never signed, and a missing key is a usage error.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("apiVersion: posguard/v1\nkind: Policy\n"), 0o600)
	if code, out, _ := runAt(t, beforeExpiry, "policy", "sign", "--key", filepath.Join(dir, "hq-policy-1.key"), broken); code != 1 || out != "" {
		t.Fatalf("sign broken policy: exit %d, %d bytes out; want 1 and nothing", code, len(out))
	}
	if code, _, _ := runCLI(t, "", "policy", "sign", "../../policy/testdata/chain-default.yaml"); code != 2 {
		t.Fatalf("sign without --key: exit %d, want 2", code)
	}
}

func TestPolicyPushNoRegisters(t *testing.T) {
	b, auth := embedtest.Start(t, "hq-push")
	dir := hqKey(t)
	code, _, stderr := runAt(t, beforeExpiry, "policy", "push", "--broker", b.URL(), "--key", filepath.Join(dir, "hq-policy-1.key"),
		"--mqtt-password-file", auth.PasswordFile("hq-push"),
		"--timeout", "10s", "../../policy/testdata/chain-default.yaml")
	if code != 0 || !strings.Contains(stderr, "no register has reported yet") {
		t.Fatalf("push with no registers: exit %d: %s", code, stderr)
	}
	// The bundle is retained: a register connecting later gets it.
	got := make(chan []byte, 1)
	if err := b.Server().Subscribe("posguard/v1/policy/all", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) { got <- pk.Payload }); err != nil {
		t.Fatal(err)
	}
	select {
	case raw := <-got:
		p, err := policy.Load(mustVerify(t, raw, dir))
		if err != nil || p.Metadata.Name != "chain-default" {
			t.Fatalf("retained bundle: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retained policy bundle")
	}
}

func mustVerify(t *testing.T, raw []byte, dir string) []byte {
	t.Helper()
	k, err := bundle.LoadTrustedKey("hq-policy-1", filepath.Join(dir, "hq-policy-1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _, err := bundle.Verify(raw, []bundle.TrustedKey{k}, bundle.TypePolicy)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// keygen --use hq prints the agent configuration that trusts the key: an
// agent configured with it verifies what 'policy sign --key' signs.
func TestPolicyKeygenForHQ(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	code, snippet, errs := runCLI(t, "", "policy", "keygen", "--use", "hq", "--kid", "hq-1", "--out", keys)
	if code != 0 || snippet != "policy:\n  trustedKeys:\n    - {kid: hq-1, file: "+filepath.Join(keys, "hq-1.pub.pem")+"}\n" ||
		!strings.Contains(errs, "keep it on HQ") {
		t.Fatalf("keygen --use hq: exit %d, stdout %q, stderr %q", code, snippet, errs)
	}
	if _, err := os.Stat(filepath.Join(keys, "hq-1.issuer.yaml")); !os.IsNotExist(err) {
		t.Errorf("an HQ key got an issuer snippet file: %v", err)
	}
	acct := filepath.Join(dir, "account.key")
	os.WriteFile(acct, []byte("0123456789abcdef0123"), 0o600)
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte("store: S001\nregister: R1\nstate: "+filepath.Join(dir, "r1.db")+"\n"+snippet+
		"tokens: {accountKeyFile: "+acct+"}\n"), 0o600)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("agent configuration with the snippet: %v", err)
	}
	code, signed, errs := runAt(t, beforeExpiry, "policy", "sign", "--key", filepath.Join(keys, "hq-1.key"), "../../policy/testdata/chain-default.yaml")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, errs)
	}
	if _, err := bundle.VerifyPolicy([]byte(signed), cfg.TrustedKeys, "S001", 0, beforeExpiry); err != nil {
		t.Fatalf("the agent trusting the snippet refuses the signed policy: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--use", "hq", "--issuer", "hq", "--kid", "k", "--out", keys}, "an HQ key (--use hq) has none"},
		{[]string{"--kid", "k", "--out", keys}, "--issuer is required with --use wallet"},
		{[]string{"--use", "bank", "--kid", "k", "--out", keys}, `--use must be wallet or hq, not "bank"`},
	} {
		if code, _, errs := runCLI(t, "", append([]string{"policy", "keygen"}, tc.args...)...); code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("keygen %q: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	_, help, _ := runCLI(t, "", "policy", "keygen", "-h")
	for _, use := range []string{"--use wallet", "tokens.issuers", "--use hq", "policy.trustedKeys"} {
		if !strings.Contains(help, use) {
			t.Errorf("keygen -h does not explain %q", use)
		}
	}
}
