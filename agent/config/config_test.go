package config

import (
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/golden"
)

func readFull(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(readFull(t)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "S001" || c.Register != "R1" || c.Scanner.Baud != 115200 || string(c.Scanner.Suffix) != "\r" ||
		!c.Scanner.AIM || c.Scanner.ReconnectMin != 200*time.Millisecond || string(c.Scanner.Feedback.Good) != "\a" ||
		string(c.POS.Suffix) != "\r\n" || c.HQ.OfflineAfter != 5*time.Minute || c.HQ.ResendAfter != 10*time.Second || c.Session.IdleTimeout != 90*time.Second ||
		c.Review.Timeout != 3*time.Minute || c.Session.VoidBarcode != "VOID" || len(c.ManagerPINs) != 1 {
		t.Fatalf("decoded %+v", c)
	}
	// Defaults of what the file leaves out.
	if c.Retention.PruneEvery != DefaultPruneEvery || c.Retention.OutboxCap != DefaultOutboxCap {
		t.Fatalf("defaults not applied: %+v", c.Retention)
	}
	c, err = Parse([]byte(strings.Replace(readFull(t), "  resendAfter: 10s\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.HQ.ResendAfter != DefaultResendAfter {
		t.Fatalf("hq.resendAfter default %v, want %v", c.HQ.ResendAfter, DefaultResendAfter)
	}
}

func TestParseMinimalDefaults(t *testing.T) {
	c, err := Parse([]byte("store: S1\nregister: R1\nstate: s.db\ntokens: {accountKeyFile: k}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != DefaultListen || c.Session.IdleTimeout != DefaultIdleTimeout || c.Review.Timeout != DefaultReviewTO ||
		c.Retention.Keep != DefaultKeep || c.Scanner != nil || c.POS != nil || c.HQ != nil {
		t.Fatalf("defaults: %+v", c)
	}
}

// Every bad value is reported with the key it is about.
func TestParseErrorsNameTheKey(t *testing.T) {
	full := readFull(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown top key", "store: S001", "store: S001\ncolour: red", `colour: unknown key "colour"`},
		{"unknown nested key", "  baud: 115200", "  baud: 115200\n  speed: 3", `scanner.speed: unknown key "speed"`},
		{"bad duration", "idleTimeout: 90s", "idleTimeout: soon", "session.idleTimeout: cannot unmarshal"},
		{"bad int", "baud: 115200", "baud: fast", "scanner.baud: cannot unmarshal"},
		{"negative baud", "baud: 115200", "baud: -1", "scanner.baud: must be between"},
		{"bad mode", "mode: line", "mode: usb", "scanner.mode: must be line or ssi"},
		{"empty suffix", "  suffix: CRLF", "  suffix: NONE", "pos.suffix: must not be empty"},
		{"bad store", "store: S001", "store: all", `store: store id "all": reserved name`},
		{"bad register", "register: R1", "register: R/1", "register: register id"},
		{"no state", "state: /var/lib/posguard/state.db", "state: ''", "state: required"},
		{"same port", "port: /dev/ttyS1", "port: /dev/ttyACM0", "pos.port: /dev/ttyACM0 is also scanner.port"},
		{"kid missing", "{kid: hq1, file: /etc/posguard/hq1.pub}", "{file: /etc/posguard/hq1.pub}", "policy.trustedKeys[0].kid: required"},
		{"no account key", "accountKeyFile: /etc/posguard/account.key", "accountKeyFile: ''", "tokens.accountKeyFile: required"},
		{"bad broker", "broker: tcp://127.0.0.1:1883", "broker: http://x", "hq.broker: scheme"},
		{"broker without scheme", "broker: tcp://127.0.0.1:1883", "broker: 127.0.0.1:1883", `hq.broker: "127.0.0.1:1883" has no scheme: write tcp://127.0.0.1:1883`},
		{"broker password not echoed", "broker: tcp://127.0.0.1:1883", "broker: hq:s3cret@127.0.0.1:1883", `hq.broker: "127.0.0.1:1883" has no scheme`},
		{"resend too soon", "resendAfter: 10s", "resendAfter: 10ms", "hq.resendAfter: must be at least 1s"},
		{"remote listen", "listen: 127.0.0.1:8088", "listen: 0.0.0.0:8088", "http.listen: \"0.0.0.0:8088\" is not a loopback"},
		{"allowed host with port", "listen: 127.0.0.1:8088", "listen: 127.0.0.1:8088\n  allowedHosts: [register-1, 'register-1:8088']", "http.allowedHosts[1]: host name \"register-1:8088\""},
		{"bad listen", "listen: 127.0.0.1:8088", "listen: nowhere", "http.listen:"},
		{"bad pin hash", "  - $2a$10$", "  - '1234'\n  - $2a$10$", "managerPINs[0]: not a bcrypt hash"},
		{"bad named pin hash", "  - $2a$10$", "  - 'sato:1234'\n  - $2a$10$", "managerPINs[0]: not a bcrypt hash"},
		{"cheap pin hash", "  - $2a$10$", "  - '$2a$04$8ZNw9NOhy47neL.fBgwYJO8giDXwPb9hcCgwPHMPzAW8TWEq2RWtO'\n  - $2a$10$", "managerPINs[0]: bcrypt cost 4, at least 10"},
		{"cheap named pin hash", "  - $2a$10$", "  - 'sato:$2a$04$8ZNw9NOhy47neL.fBgwYJO8giDXwPb9hcCgwPHMPzAW8TWEq2RWtO'\n  - $2a$10$", "managerPINs[0]: bcrypt cost 4, at least 10"},
		{"control char in manager name", "  - $2a$10$", "  - \"sa\\u0007to:$2a$04$x\"\n  - $2a$10$", "managerPINs[0]: manager name"},
		{"short retention", "keep: 168h", "keep: 1h", "retention.keep: must be at least 24h"},
		{"negative review", "timeout: 3m", "timeout: -3m", "review.timeout: must be > 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(full, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			doc := strings.Replace(full, tc.old, tc.new, 1)
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAllowRemote(t *testing.T) {
	doc := strings.Replace(readFull(t), "listen: 127.0.0.1:8088", "listen: 0.0.0.0:8088\n  allowRemote: true", 1)
	if _, err := Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadReadsKeys(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("hq1.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	acct := write("account.key", []byte("0123456789abcdef0123\n"))
	doc := strings.NewReplacer("/etc/posguard/hq1.pub", keyFile, "/etc/posguard/account.key", acct).Replace(readFull(t))
	path := write("agent.yaml", []byte(doc))
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedKeys) != 1 || c.TrustedKeys[0].KID != "hq1" || c.TrustedKeys[0].Alg != "EdDSA" {
		t.Fatalf("trusted keys %+v", c.TrustedKeys)
	}
	if string(c.AccountKey) != "0123456789abcdef0123" {
		t.Fatal("account key not read")
	}
	if s := c.AccountKey.String(); s != "****" {
		t.Fatalf("secret prints as %q", s)
	}

	write("account.key", []byte("short"))
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "tokens.accountKeyFile:") {
		t.Fatalf("short account key: %v", err)
	}
	os.Remove(keyFile)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "policy.trustedKeys[0].file:") {
		t.Fatalf("missing key file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil {
		t.Fatal("missing config accepted")
	}
}

func TestRestartNeeded(t *testing.T) {
	a, err := Parse([]byte(readFull(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse([]byte(readFull(t)))
	b.Review.Timeout = time.Minute
	b.ManagerPINs = nil
	if keys := RestartNeeded(a, b); len(keys) != 0 {
		t.Fatalf("live keys reported as restart: %v", keys)
	}
	b.Scanner.Baud = 9600
	b.HTTP.Listen = "127.0.0.1:9"
	if keys := RestartNeeded(a, b); strings.Join(keys, ",") != "scanner,http" {
		t.Fatalf("restart keys %v", keys)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("store: S1\nregister: R1\nstate: s.db\ntokens: {accountKeyFile: k}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
	})
}

// The commented example in scripts/ is a valid configuration.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../scripts/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Scanner == nil || c.POS == nil || c.HQ == nil || len(c.ManagerPINs) != 1 || c.HTTP.Listen != DefaultListen {
		t.Fatalf("example decoded as %+v", c)
	}
}

// Every problem of a configuration and of the files it names is reported
// at once, each with its key path (what `posguard agent --check` prints):
// testdata/check/NAME.yaml against NAME.golden.
func TestLoadReportsEveryProblem(t *testing.T) {
	files, err := filepath.Glob("testdata/check/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("%d check cases: %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Load: %v, want a *ValidationError", err)
			}
			if !strings.HasPrefix(err.Error(), "config "+f+": ") {
				t.Errorf("error %q does not name the file once", err)
			}
			var got strings.Builder
			for _, p := range ve.Problems {
				got.WriteString(p.String() + "\n")
			}
			golden.Check(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(got.String()))
		})
	}
}

// A secret file other users can read is a warning, not a refusal: the
// agent runs and says so. The public trusted key may be world-readable.
func TestWarnsOfReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("hq1.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	acct := write("account.key", []byte("0123456789abcdef0123\n"), 0o644)
	doc := strings.NewReplacer("/etc/posguard/hq1.pub", keyFile, "/etc/posguard/account.key", acct).Replace(readFull(t))
	path := write("agent.yaml", []byte(doc), 0o600)

	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "tokens.accountKeyFile: " + acct + " is readable by group or others (mode 0644); chmod 600 it"
	if len(c.Warnings) != 1 || c.Warnings[0].String() != want {
		t.Fatalf("warnings %q, want [%q]", c.Warnings, want)
	}
	for _, mode := range []os.FileMode{0o640, 0o604} {
		os.Chmod(acct, mode)
		if c, err := Load(path); err != nil || len(c.Warnings) != 1 {
			t.Errorf("mode %04o: warnings %q, err %v", mode, c.Warnings, err)
		}
	}
	os.Chmod(acct, 0o600)
	if c, err := Load(path); err != nil || len(c.Warnings) != 0 {
		t.Fatalf("mode 0600: warnings %q, err %v", c.Warnings, err)
	}

	// The broker TLS client key too; its certificate is public.
	certPEM, keyPEM := selfSigned(t)
	cert := write("r1.crt", certPEM, 0o644)
	tlsKey := write("r1.key", keyPEM, 0o644)
	doc = strings.Replace(doc, "broker: tcp://127.0.0.1:1883", "broker: ssl://127.0.0.1:8883\n  certFile: "+cert+"\n  keyFile: "+tlsKey, 1)
	write("agent.yaml", []byte(doc), 0o600)
	c, err = Load(path)
	want = "hq.keyFile: " + tlsKey + " is readable by group or others (mode 0644); chmod 600 it"
	if err != nil || len(c.Warnings) != 1 || c.Warnings[0].String() != want {
		t.Fatalf("TLS key 0644: warnings %q, err %v; want [%q]", c.Warnings, err, want)
	}
}

// selfSigned is a client certificate and its key, PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "S001/R1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
}
