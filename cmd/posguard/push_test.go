package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
)

func hqKey(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	if code, _, stderr := runCLI(t, "", "policy", "keygen", "--issuer", "hq", "--kid", "hq-policy-1", "--alg", "EdDSA", "--out", dir); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	return dir
}

func TestPolicySign(t *testing.T) {
	dir := hqKey(t)
	code, out, stderr := runCLI(t, "", "policy", "sign", "--key", filepath.Join(dir, "hq-policy-1.key"), "../../policy/testdata/chain-default.yaml")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	trusted, err := bundle.LoadTrustedKey("hq-policy-1", filepath.Join(dir, "hq-policy-1.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	p, err := bundle.VerifyPolicy([]byte(out), []bundle.TrustedKey{trusted}, "s1", 0, at)
	if err != nil {
		t.Fatalf("signed output does not verify: %v", err)
	}
	if p.Metadata.Name != "chain-default" {
		t.Fatalf("signed policy %q", p.Metadata.Name)
	}

	// A broken policy is never signed, and a missing key is a usage error.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("apiVersion: posguard/v1\nkind: Policy\n"), 0o600)
	if code, out, _ := runCLI(t, "", "policy", "sign", "--key", filepath.Join(dir, "hq-policy-1.key"), broken); code != 1 || out != "" {
		t.Fatalf("sign broken policy: exit %d, %d bytes out; want 1 and nothing", code, len(out))
	}
	if code, _, _ := runCLI(t, "", "policy", "sign", "../../policy/testdata/chain-default.yaml"); code != 2 {
		t.Fatalf("sign without --key: exit %d, want 2", code)
	}
}

func TestPolicyPushNoRegisters(t *testing.T) {
	b, auth := embedtest.Start(t, "hq-push")
	dir := hqKey(t)
	code, _, stderr := runCLI(t, "", "policy", "push", "--broker", b.URL(), "--key", filepath.Join(dir, "hq-policy-1.key"),
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
