// Package consoletest runs a real HQ with its console for browser tests of
// the console's pages: a store (a bbolt file, or a schema of the test
// PostgreSQL), the embedded MQTT broker with passwords for HQ and the
// registers, a denylist signing key the registers trust, and a users file
// holding viewer, analyst and admin, each with the password
// "<name>-password". Login(user) is the chromedp action that logs a user in.
package consoletest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy/bundle"
)

// Users are the users of the users file, one per role.
var Users = []string{"viewer", "analyst", "admin"}

// Password is the password of a user of Users.
func Password(user string) string { return user + "-password" }

// KID is the key id of the denylist signing key.
const KID = "hq1"

// DefaultRegisters are the registers given broker passwords when
// Options.Registers is empty.
var DefaultRegisters = []string{"S001/R1", "S001/R2", "S002/R1"}

// Options shape the HQ a test gets.
type Options struct {
	// Postgres stores in a fresh schema of the test PostgreSQL instead of
	// a bbolt file; the test skips when there is none (fails under
	// POSGUARD_INTEGRATION=1).
	Postgres bool
	// Registers get broker identities and passwords (STORE/REG).
	Registers []string
	// Identities are further broker identities (display/STORE, hq-push).
	Identities []string
	// Open starts the console without users: open, as apiauth.Open, as on
	// a loopback listener without --console-users and --api-tokens.
	Open bool
	// Tokens, when set, is the API tokens file's content, for token
	// callers beside the console's users.
	Tokens string
	// Configure, when set, adjusts HQ's configuration before it starts.
	Configure func(*hq.Config)
}

// Console is a running HQ and console.
type Console struct {
	URL       string // http://127.0.0.1:PORT, the API and the console
	Service   *hq.Service
	Store     store.Store
	Broker    *broker.Broker
	BrokerURL string
	Auth      *embedtest.Auth // the broker's passwords (Auth.Password(identity), Auth.PasswordFile)
	UsersFile string
	// Signer signs denylist and allowlist changes as KID; TrustedKeyFile
	// is its public key (PEM PKIX) for a register's policy.trustedKeys.
	Signer         ed25519.PrivateKey
	TrustedKey     bundle.TrustedKey
	TrustedKeyFile string
}

// usersFile is the users file's content, made once per test binary:
// bcrypt at the lowest cost the file accepts is still slow under the race
// detector.
var usersFile = sync.OnceValues(func() (string, error) {
	var lines []string
	for _, u := range Users {
		line, err := apiauth.UserLine(u, apiauth.UserRole(u), Password(u), apiauth.MinCost)
		if err != nil {
			return "", err
		}
		lines = append(lines, line)
	}
	return "# consoletest: one user per role, password NAME-password\n" + strings.Join(lines, "\n") + "\n", nil
})

// Start runs HQ with its console until the test ends.
func Start(t testing.TB, o Options) *Console {
	t.Helper()
	if len(o.Registers) == 0 {
		o.Registers = DefaultRegisters
	}
	dir := t.TempDir()
	c := &Console{}
	ids := append([]string{"hq"}, o.Registers...)
	ids = append(ids, o.Identities...)
	c.Broker, c.Auth = embedtest.Start(t, ids...)
	c.BrokerURL = c.Broker.URL()

	var err error
	if o.Postgres {
		c.Store, err = store.OpenPostgres(context.Background(), testenv.PostgresURL(t))
	} else {
		c.Store, err = store.OpenBolt(filepath.Join(dir, "hq.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Store.Close() })

	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Signer = priv
	c.TrustedKey = bundle.TrustedKey{KID: KID, Alg: "EdDSA", Public: pub}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	c.TrustedKeyFile = filepath.Join(dir, KID+".pub")
	if err := os.WriteFile(c.TrustedKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := hq.Config{MQTT: c.Auth.MQTT(c.BrokerURL, "hq"), Store: c.Store,
		Signer: priv, SignerAlg: "EdDSA", SignerKID: KID, APIListen: ln.Addr().String()}
	if !o.Open {
		text, err := usersFile()
		if err != nil {
			t.Fatal(err)
		}
		c.UsersFile = filepath.Join(dir, "console-users")
		if err := os.WriteFile(c.UsersFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if cfg.Users, err = apiauth.LoadUsers(c.UsersFile); err != nil {
			t.Fatal(err)
		}
	}
	if o.Tokens != "" {
		if cfg.Auth, err = apiauth.Parse(strings.NewReader(o.Tokens)); err != nil {
			t.Fatal(err)
		}
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	svc, err := hq.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Service = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	srv, lim := httpserve.Server(ln, svc.Handler(), hq.APILimits(), nil)
	go srv.Serve(lim)
	t.Cleanup(func() {
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	})
	c.URL = "http://" + ln.Addr().String()
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("HQ did not connect to the embedded broker and subscribe")
	}
	return c
}

// Stores runs f on an HQ with a bbolt store, then on one with PostgreSQL
// (skipped when there is none, unless POSGUARD_INTEGRATION=1).
func Stores(t *testing.T, o Options, f func(t *testing.T, c *Console)) {
	for _, pg := range []bool{false, true} {
		name := "bolt"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			o := o
			o.Postgres = pg
			f(t, Start(t, o))
		})
	}
}

// Agent is what a real register (agent) needs to reach this HQ: the
// broker, its password file, and the key HQ signs lists with.
type Agent struct {
	Broker         string
	Identity       string // STORE/REG
	PasswordFile   string
	KID            string
	TrustedKeyFile string
}

// HQYAML is the agent configuration's hq: section for the register.
func (a Agent) HQYAML() string {
	return fmt.Sprintf("hq:\n  broker: %s\n  passwordFile: %s\n", a.Broker, a.PasswordFile)
}

// Agent is the connection of register identity ("S001/R1", one of
// Options.Registers).
func (c *Console) Agent(identity string) Agent {
	return Agent{Broker: c.BrokerURL, Identity: identity, PasswordFile: c.Auth.PasswordFile(identity),
		KID: KID, TrustedKeyFile: c.TrustedKeyFile}
}

// Login logs user (one of Users) in with its password, starting from a
// browser without cookies, and waits for the console's navigation.
func (c *Console) Login(user string) chromedp.Action[chromedp.Void] {
	return c.LoginWith(user, Password(user))
}

// LoginWith submits the login form with any name and password and waits
// for the navigation (success) or the form's error (failure): check
// which with chromedp.
func (c *Console) LoginWith(user, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}),
		chromedp.Navigate(c.URL+"/console/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-user"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-user"]`), user),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-password"]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"], [data-testid="login-error"]`)),
	)
}

// Client is an HTTP client for the API as a token caller (the tokens of
// Options.Tokens).
func (c *Console) Client(token string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: bearer{token}}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// Screenshot takes a full-page screenshot of what ctx shows and, when
// POSGUARD_UPDATE_SCREENSHOTS=1, writes it to hq/testdata/console-NAME.png
// (committed, shown in the README); otherwise to the test's temporary
// directory, so the path is exercised on every run.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 5_000 {
		t.Fatalf("screenshot %s is not a PNG of a rendered page (%d bytes)", name, len(png))
	}
	dir := t.TempDir()
	if os.Getenv("POSGUARD_UPDATE_SCREENSHOTS") == "1" {
		_, src, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(src), "..", "..", "testdata")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "console-"+name+".png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	return out
}
