package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/display/auth"
	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/internal/brokertest"
)

func TestDisplayCLIArgs(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"no broker", []string{"display", "-store", "S001"}, "", 2, "-broker is required"},
		{"no store", []string{"display", "-broker", "tcp://127.0.0.1:1"}, "", 2, "-store is required"},
		{"stray argument", []string{"display", "-store", "S001", "-broker", "tcp://127.0.0.1:1", "extra"}, "", 2, "unexpected argument"},
		{"bad flag", []string{"display", "-nope"}, "", 2, "flag provided but not defined"},
		{"cert without key", []string{"display", "-store", "S001", "-broker", "tcp://127.0.0.1:1", "-tls-cert", "c.pem"}, "", 2, "go together"},
		{"beyond loopback without password", []string{"display", "-store", "S001", "-broker", "tcp://127.0.0.1:1", "-listen", "0.0.0.0:8090"}, "", 1, "requires a password hash"},
		{"bad store id", []string{"display", "-store", "S/1", "-broker", "tcp://127.0.0.1:1"}, "", 1, "store id"},
		{"missing CA", []string{"display", "-store", "S001", "-broker", "ssl://127.0.0.1:1", "-tls-ca", "/nonexistent/ca.pem"}, "", 1, "read broker CA"},
		{"empty password to hash", []string{"display", "-hash-password"}, "\n", 2, "empty password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), stdio{In: strings.NewReader(c.stdin), Out: &out, Err: &errb}, c.args)
			if code != c.wantCode || !strings.Contains(errb.String(), c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errb.String(), c.wantCode, c.wantErr)
			}
		})
	}
}

func TestDisplayCLIHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, []string{"display", "-h"}); code != 0 ||
		!strings.Contains(out.String(), "-password-hash-file") {
		t.Fatalf("display -h: exit %d, stdout %q", code, out.String())
	}
}

func TestDisplayCLIHashPassword(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), stdio{In: strings.NewReader("s3cret\n"), Out: &out, Err: &errb}, []string{"display", "-hash-password"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")); err != nil {
		t.Fatalf("printed hash %q does not verify: %v", hash, err)
	}
}

// startDisplay runs `posguard display args…` and returns the page URL it
// printed and a stop function that checks the exit code.
func startDisplay(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, stdio{In: strings.NewReader(""), Out: pw, Err: io.Discard}, append([]string{"display"}, args...))
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no address printed: %v", err)
	}
	go io.Copy(io.Discard, pr)
	url := regexp.MustCompile(`https?://127\.0\.0\.1:\d+/`).FindString(line)
	if url == "" {
		cancel()
		t.Fatalf("printed %q, want the page URL", line)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-codec:
			if code != 0 {
				t.Errorf("exit %d after stop", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("display did not stop")
		}
	}
	t.Cleanup(stop)
	return url, stop
}

// The command serves the page on the address it prints and exits 0 when
// stopped.
func TestDisplayCLIServes(t *testing.T) {
	b := brokertest.Start(t)
	url, stop := startDisplay(t, "-broker", b.URL(), "-store", "S001", "-listen", "127.0.0.1:0")
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(body, []byte("S001")) {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	stop()
}

// With -tls-* the display reaches a broker that demands client
// certificates; with -https-* it serves the page over TLS with a Secure
// session cookie.
func TestDisplayCLITLS(t *testing.T) {
	pki := brokertest.NewPKI(t, t.TempDir(), "display/S001")
	b := brokertest.StartTLS(t, pki.ServerTLS)
	url, _ := startDisplay(t, "-broker", b.URL(), "-store", "S001", "-listen", "127.0.0.1:0",
		"-tls-ca", pki.CAFile, "-tls-cert", pki.ClientCert, "-tls-key", pki.ClientKey,
		"-https-cert", pki.ServerCert, "-https-key", pki.ServerKey)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s, want https", url)
	}
	roots := x509.NewCertPool()
	ca, _ := os.ReadFile(pki.CAFile)
	roots.AppendCertsFromPEM(ca)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var secure bool
	for _, ck := range res.Cookies() {
		secure = secure || (ck.Name == auth.CookieName && ck.Secure)
	}
	if res.StatusCode != 200 || !secure {
		t.Fatalf("GET %s: %d, secure session cookie %v", url, res.StatusCode, secure)
	}
	// The page's stream reports the broker link up once the TLS
	// connection with the client certificate is made.
	es, err := c.Get(url + "events")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Body.Close()
	rd := sse.NewReader(es.Body)
	for {
		m, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before the broker link came up: %v", err)
		}
		if (m.Event == "snapshot" || m.Event == "broker") && bytes.Contains(m.Data, []byte(`"connected":true`)) {
			break
		}
	}
}
