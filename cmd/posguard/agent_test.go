package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/token"
)

// agentFiles writes a complete agent configuration into dir and returns
// its path; the policy is the example chain policy with a far expiry.
func agentFiles(t *testing.T, dir string) string {
	t.Helper()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pol, err := os.ReadFile("../../policy/testdata/chain-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	polPath := write("policy.yaml", bytes.Replace(pol, []byte("expiresAt: 2027-01-01T00:00:00Z"), []byte("expiresAt: 2099-01-01T00:00:00Z"), 1))
	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyPath := write("hq1.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	acctPath := write("account.key", []byte("cli-test-account-key-0123456789"))
	h, err := os.ReadFile("../../agent/testdata/pin-4711.bcrypt") // cost 10, made once
	if err != nil {
		t.Fatal(err)
	}
	h = bytes.TrimSpace(h)
	return write("agent.yaml", fmt.Appendf(nil, `store: S001
register: R1
state: %s
policy:
  bootstrap: %s
  trustedKeys: [{kid: hq1, file: %s}]
tokens: {accountKeyFile: %s}
http: {listen: "127.0.0.1:0"}
managerPINs: ['%s']
`, filepath.Join(dir, "state.db"), polPath, keyPath, acctPath, h))
}

func agentCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runAt(t, time.Time{}, args...)
}

func TestAgentCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := agentFiles(t, dir)
	bad := filepath.Join(dir, "bad.yaml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(bad, bytes.Replace(b, []byte("register: R1"), []byte("register: R1\nscanner: {port: /dev/null, mode: usb, suffix: CR}"), 1), 0o600)
	nobootstrap := filepath.Join(dir, "nobootstrap.yaml")
	os.WriteFile(nobootstrap, bytes.Replace(b, []byte("policy.yaml"), []byte("missing.yaml"), 1), 0o600)
	tests := []struct {
		name      string
		args      []string
		code      int
		out, errs string
	}{
		{"help", []string{"agent", "-h"}, 0, "-config", ""},
		{"check ok", []string{"agent", "--check", "--config", cfg}, 0, "ok (store S001, register R1)", ""},
		{"check bad value", []string{"agent", "--check", "--config", bad}, 1, bad + ": scanner.mode: must be line or ssi", ""},
		{"start with a bad value", []string{"agent", "--config", bad}, 1, "", "scanner.mode: must be line or ssi"},
		{"missing file", []string{"agent", "--config", filepath.Join(dir, "none.yaml")}, 1, "", "posguard agent: config: open " + filepath.Join(dir, "none.yaml") + ": no such file"},
		{"extra argument", []string{"agent", "--config", cfg, "extra"}, 2, "", `unexpected argument "extra"`},
		{"bad flag", []string{"agent", "--colour"}, 2, "", "flag provided but not defined"},
		{"check warns of a bad bootstrap", []string{"agent", "--check", "--config", nobootstrap}, 0, ": ok", `level=WARN msg="policy.bootstrap: policy: open ` + filepath.Join(dir, "missing.yaml") + `: no such file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := agentCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.errs) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
	_, help, _ := agentCLI(t, "agent", "-h")
	for _, flag := range []string{"-config", "-check"} {
		if !strings.Contains(help, flag) {
			t.Errorf("help does not describe %s", flag)
		}
	}
}

// child is `posguard agent` running as a separate process.
type child struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

var listenRE = regexp.MustCompile(`msg="agent running".* http=(http://\S+)`)

func startChild(t *testing.T, bin, cfg string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, "agent", "--config", cfg), done: make(chan struct{})}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.logs.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case c.url = <-urls:
	case <-c.done:
		t.Fatalf("agent exited at start:\n%s", c.log())
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		t.Fatalf("agent did not start:\n%s", c.log())
	}
	return c
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (c *child) wait() error {
	<-c.done
	return c.cmd.Wait()
}

type answer struct {
	SaleID  string `json:"saleId"`
	Outcome string `json:"outcome"`
	EventID string `json:"eventId"`
	Error   string `json:"error"`
}

func decideHTTP(httpc *http.Client, url, tok string) (answer, error) {
	body, _ := json.Marshal(map[string]any{"token": tok, "lines": []map[string]any{{"jan": "4901234200012", "quantity": 1}}})
	resp, err := httpc.Post(url+"/v1/decide", "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return answer{}, fmt.Errorf("%d %s: %w", resp.StatusCode, b, err)
	}
	return a, nil
}

// The agent is killed with SIGKILL at random points of a stream of
// decisions and restarted: every allowed decision a caller heard of has
// its outbox event, no token accepted before a kill is accepted after it,
// and the state file opens cleanly.
func TestAgentSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the posguard binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "posguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := agentFiles(t, dir)
	issuerKey, _, err := keyfile.Load("../../policy/testdata/test-issuer-ed25519.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var mintMu sync.Mutex
	mint := func() string {
		mintMu.Lock()
		n++
		i := n
		mintMu.Unlock()
		return mintFor(t, issuerKey, i)
	}

	type accepted struct{ token, saleID string }
	var (
		mu      sync.Mutex
		allowed []accepted
	)
	httpc := &http.Client{Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	const rounds = 4
	for round := range rounds {
		c := startChild(t, bin, cfg)
		// Everything accepted before the earlier kills stays used.
		mu.Lock()
		before := append([]accepted(nil), allowed...)
		mu.Unlock()
		for _, a := range before {
			res, err := decideHTTP(httpc, c.url, a.token)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome == "allow" {
				t.Fatalf("round %d: token of sale %s accepted again after a kill", round, a.saleID)
			}
		}
		if round == 0 {
			c.signal(t, syscall.SIGHUP)
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(c.log(), "configuration reloaded") {
				if time.Now().After(deadline) {
					t.Fatalf("SIGHUP not handled:\n%s", c.log())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					tok := mint()
					res, err := decideHTTP(httpc, c.url, tok)
					if err != nil {
						return // killed under us: the answer was never heard
					}
					if res.Outcome == "allow" {
						mu.Lock()
						allowed = append(allowed, accepted{tok, res.SaleID})
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		if round < rounds-1 {
			c.signal(t, syscall.SIGKILL)
			c.wait()
			close(stop)
			wg.Wait()
			continue
		}
		close(stop)
		wg.Wait()
		c.signal(t, syscall.SIGTERM)
		if err := c.wait(); err != nil {
			t.Fatalf("clean stop: %v\n%s", err, c.log())
		}
	}
	if len(allowed) < 20 {
		t.Fatalf("only %d decisions allowed: the test did not exercise much", len(allowed))
	}

	st, err := state.Open(filepath.Join(dir, "state.db"), state.Options{Store: "S001", Register: "R1"})
	if err != nil {
		t.Fatalf("state file after the kills: %v", err)
	}
	defer st.Close()
	evs, err := st.Pending(0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	decided := map[string]event.Event{}
	for _, ev := range evs {
		if ev.Type == event.Decision {
			decided[ev.SaleID] = ev
		}
	}
	for _, a := range allowed {
		ev, ok := decided[a.saleID]
		if !ok {
			t.Fatalf("sale %s was allowed but has no outbox event", a.saleID)
		}
		if ev.Decision.Outcome != "allow" {
			t.Fatalf("sale %s allowed but recorded as %s", a.saleID, ev.Decision.Outcome)
		}
	}
	t.Logf("%d allowed decisions over %d kills, %d outbox events", len(allowed), rounds-1, len(evs))
}

func mintFor(t *testing.T, key crypto.Signer, i int) string {
	now := time.Now()
	s, err := token.Mint(key, "EdDSA", "test-2026", token.Claims{Issuer: "posguard-wallet-test",
		Subject: fmt.Sprintf("crash-%d", i), IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(5 * time.Minute),
		ID: fmt.Appendf(nil, "crash-cti-%08d", i)})
	if err != nil {
		t.Error(err)
	}
	return s
}

// `posguard agent` in-process: it serves, and a cancelled context (what
// SIGTERM does in main) stops it with exit 0 and a closed state file.
func TestAgentRunsAndStops(t *testing.T) {
	dir := t.TempDir()
	cfg := agentFiles(t, dir)
	var out bytes.Buffer
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, stdio{In: strings.NewReader(""), Out: &out, Err: logs}, []string{"agent", "--config", cfg})
	}()
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("agent did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	if !strings.Contains(logs.String(), "agent stopped") {
		t.Fatalf("no clean stop logged:\n%s", logs)
	}
	st, err := state.Open(filepath.Join(dir, "state.db"), state.Options{Store: "S001", Register: "R1", LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("state file still locked or damaged after stop: %v", err)
	}
	st.Close()
}

// The agent warns, in --check and when it starts, of a secret file that
// group or others can read, and runs anyway; with mode 0600 it is quiet.
func TestAgentWarnsOfReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := agentFiles(t, dir)
	acct := filepath.Join(dir, "account.key")
	warning := `level=WARN msg="tokens.accountKeyFile: ` + acct + ` is readable by group or others (mode 0644); chmod 600 it"`

	if err := os.Chmod(acct, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := agentCLI(t, "agent", "--check", "--config", cfg)
	if code != 0 || !strings.Contains(out, ": ok") || !strings.Contains(errs, warning) {
		t.Errorf("--check, 0644: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// At start: the warning comes before the agent is up.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}, []string{"agent", "--config", cfg})
	}()
	waitOutput(t, ctx, &stderr, `msg="agent running"`)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("agent exit %d after cancel", code)
	}
	logs := stderr.String()
	if i, j := strings.Index(logs, warning), strings.Index(logs, `msg="agent running"`); i < 0 || i > j {
		t.Errorf("no warning before the agent ran:\n%s", logs)
	}

	if err := os.Chmod(acct, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := agentCLI(t, "agent", "--check", "--config", cfg); code != 0 || strings.Contains(errs, "WARN") {
		t.Errorf("--check, 0600: exit %d, stderr %q", code, errs)
	}
}
