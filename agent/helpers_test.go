package agent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/token"
)

const (
	testPIN    = "4711"
	issuer     = "posguard-wallet-test"
	issuerKID  = "test-2026"
	onigiri    = "4901234200012"                    // food, 200
	coffee     = "4901234200029"                    // drink, 300
	pack       = "4901234000018"                    // tobacco, 600
	carton     = "4901234000100"                    // tobacco-carton, 6000
	policyFile = "../policy/testdata/unscored.yaml" // the example before scores: a sale over ¥10,000 is held
)

// fixture is one agent's files: configuration pieces, keys and the issuer
// key that mints wallet tokens for it.
type fixture struct {
	t      testing.TB
	dir    string
	issuer crypto.Signer
	hqKey  ed25519.PrivateKey
	pinH   string
	seq    atomic.Int64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	k, _, err := keyfile.Load("../policy/testdata/test-issuer-ed25519.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	f.issuer = k
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.hqKey = priv
	der, _ := x509.MarshalPKIXPublicKey(pub)
	f.write("hq1.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	f.write("account.key", []byte("test-account-key-0123456789\n"))
	// Generated once (cost 10, the lowest the configuration takes):
	// hashing at test time would cost every test a tenth of a second.
	h, err := os.ReadFile("testdata/pin-4711.bcrypt")
	if err != nil {
		t.Fatal(err)
	}
	f.pinH = strings.TrimSpace(string(h))
	f.policy("policy.yaml", "2099-01-01T00:00:00Z")
	return f
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

func (f *fixture) write(name string, b []byte) string {
	f.t.Helper()
	p := f.path(name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// policy writes the example chain policy with another expiry, so the tests
// do not depend on the date they run.
func (f *fixture) policy(name, expires string) string {
	f.t.Helper()
	b, err := os.ReadFile(policyFile)
	if err != nil {
		f.t.Fatal(err)
	}
	s := strings.Replace(string(b), "expiresAt: 2027-01-01T00:00:00Z", "expiresAt: "+expires, 1)
	if s == string(b) {
		f.t.Fatal("example policy has no expiresAt line to replace")
	}
	return f.write(name, []byte(s))
}

// yaml is a configuration file for this fixture; extra is appended.
func (f *fixture) yaml(extra string) string {
	return fmt.Sprintf(`store: S001
register: R1
state: %s
policy:
  bootstrap: %s
  trustedKeys:
    - {kid: hq1, file: %s}
tokens:
  accountKeyFile: %s
http:
  listen: 127.0.0.1:0
managerPINs: ['%s']
`, f.path("state.db"), f.path("policy.yaml"), f.path("hq1.pub"), f.path("account.key"), f.pinH) + extra
}

func (f *fixture) config(extra string) *config.Config {
	f.t.Helper()
	p := f.write("agent.yaml", []byte(f.yaml(extra)))
	c, err := config.Load(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

type claims = token.Claims

// mint makes a fresh PG1 token for account; adjust changes the claims.
func (f *fixture) mint(account string, adjust func(*claims)) string {
	f.t.Helper()
	now := time.Now()
	c := claims{Issuer: issuer, Subject: account, IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(5 * time.Minute),
		ID: []byte(fmt.Sprintf("cti-%012d", f.seq.Add(1)))}
	if adjust != nil {
		adjust(&c)
	}
	s, err := token.Mint(f.issuer, "EdDSA", issuerKID, c)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// running is an agent running in this process.
type running struct {
	*agent.Agent
	url    string
	client *http.Client
	stop   func() error
}

func start(t testing.TB, cfg *config.Config, opts agent.Options) *running {
	t.Helper()
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("agent did not start in 10s")
	}
	var stopped bool
	var runErr error
	r := &running{Agent: a, url: "http://" + a.Addr(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	return r
}

func (r *running) decide(t testing.TB, tok string, lines ...agent.CartLine) (agent.Result, int) {
	t.Helper()
	b, _ := json.Marshal(agent.DecideRequest{Lines: lines, Token: tok})
	var res agent.Result
	code := r.do(t, "POST", "/v1/decide", b, &res)
	return res, code
}

func (r *running) do(t testing.TB, method, path string, body []byte, out any) int {
	t.Helper()
	code, _, b := r.send(t, method, path, body, nil)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, code, b, err)
		}
	}
	return code
}

// send makes one request with extra headers (Host among them) and reads
// the whole answer.
func (r *running) send(t testing.TB, method, path string, body []byte, hdr http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (r *running) resolve(t testing.TB, id, action, pin string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(agent.ResolveRequest{Action: action, PIN: pin, By: "manager-tanaka"})
	var out map[string]any
	code := r.do(t, "POST", "/v1/reviews/"+id, b, &out)
	s, _ := json.Marshal(out)
	return code, string(s)
}

func line(jan string, qty int) agent.CartLine { return agent.CartLine{JAN: jan, Quantity: qty} }

func fired(res agent.Result) []string {
	var ids []string
	for _, f := range res.Decision.Rules {
		if f.Mode == "enforce" {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSchema makes a bbolt file laid out as a posguard state file of
// another schema version.
func writeSchema(t *testing.T, path string, version uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, version)
		return meta.Put([]byte("schema"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
