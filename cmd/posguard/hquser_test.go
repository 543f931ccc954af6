package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/posguard/posguard/hq/apiauth"
)

func TestHQUserArgs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	cases := []struct {
		name, stdin string
		args        []string
		code        int
		wantErr     string
	}{
		{"no file", "long-enough-pw\n", []string{"hq-user", "--name", "sato"}, 2, "give --file and --name"},
		{"bad role", "long-enough-pw\n", []string{"hq-user", "--file", file, "--name", "sato", "--role", "root"}, 2, `--role "root": want viewer, analyst or admin`},
		{"low cost", "long-enough-pw\n", []string{"hq-user", "--file", file, "--name", "sato", "--cost", "4"}, 2, "--cost 4: want 10 or more"},
		{"password as argument", "", []string{"hq-user", "--file", file, "--name", "sato", "hunter2"}, 2, "never given as an argument"},
		{"no password", "", []string{"hq-user", "--file", file, "--name", "sato"}, 1, "no password on standard input"},
		{"short password", "short\n", []string{"hq-user", "--file", file, "--name", "sato"}, 1, "shorter than 10"},
		{"confirmation differs", "long-enough-pw\nlong-enough-pX\n", []string{"hq-user", "--file", file, "--name", "sato"}, 1, "the passwords differ"},
		{"beyond loopback without users or tokens", "", []string{"hq", "--embed-broker", "127.0.0.1:0", "--listen", "0.0.0.0:0"}, 2, "give --api-tokens or --console-users"},
		{"bad users file", "", []string{"hq", "--embed-broker", "127.0.0.1:0", "--console-users", filepath.Join("testdata", "no-such-users")}, 1, "console users"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(stderr, c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, stderr, c.code, c.wantErr)
			}
		})
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a refused hq-user left a file: %v", err)
	}
}

// hq-user on a terminal asks twice without echo; the line it writes
// (0600) holds a bcrypt hash of the password at the cost asked.
func TestHQUserOnATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	file := filepath.Join(t.TempDir(), "users")
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), stdio{In: tty, Out: io.Discard, Err: &stderr}, []string{"hq-user", "--file", file, "--name", "sato", "--role", "analyst", "--cost", "10"})
	}()
	go io.Copy(io.Discard, ptmx) // the terminal's echo of the newlines
	// term.ReadPassword turns echo off before reading; typed early, the
	// input waits in the terminal's buffer.
	io.WriteString(ptmx, "correct-horse-battery\r")
	io.WriteString(ptmx, "correct-horse-battery\r")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("hq-user exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hq-user did not finish")
	}
	if !strings.Contains(stderr.String(), "Password for sato: ") || !strings.Contains(stderr.String(), "Again: ") {
		t.Errorf("prompts: %q", stderr.String())
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", fi, err)
	}
	users, err := apiauth.LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := users.Check("sato", "correct-horse-battery"); err != nil || u.Role != apiauth.Analyst {
		t.Fatalf("check: %+v %v", u, err)
	}
	body, _ := os.ReadFile(file)
	if strings.Contains(string(body), "correct-horse") || !strings.HasPrefix(string(body), "sato analyst $2a$10$") {
		t.Fatalf("users file %q", body)
	}
}

// Users made by hq-user log in to an HQ started with --console-users: the
// session reads the API, its unsafe calls need the CSRF token, the role
// bounds what it may change, and replacing a user's line changes the role.
func TestHQUserConsoleLogin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	for _, u := range []struct{ name, role string }{{"tanaka", "viewer"}, {"sato", "analyst"}} {
		if code, _, stderr := runCLI(t, u.name+"-password\n", "hq-user", "--file", file, "--name", u.name, "--role", u.role, "--cost", "10"); code != 0 {
			t.Fatalf("hq-user %s: exit %d: %s", u.name, code, stderr)
		}
	}
	// Replace: tanaka's new password, same role.
	if code, _, stderr := runCLI(t, "tanaka-new-password\ntanaka-new-password\n", "hq-user", "--file", file, "--name", "tanaka", "--cost", "10"); code != 0 || !strings.Contains(stderr, "replaced in") {
		t.Fatalf("replace: exit %d: %s", code, stderr)
	}
	if body, _ := os.ReadFile(file); strings.Count(string(body), "tanaka ") != 1 {
		t.Fatalf("users file after replacing %q", body)
	}

	base := startHQCLI(t, "--console-users", file)

	login := func(user, password string) (*http.Client, string, int) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, err := c.PostForm(base+"/console/login", url.Values{"user": {user}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csrf := regexp.MustCompile(`"csrf":"([^"]+)"`).FindStringSubmatch(string(page))
		if csrf == nil {
			return c, "", resp.StatusCode
		}
		return c, csrf[1], resp.StatusCode
	}
	do := func(c *http.Client, method, path, csrf, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(apiauth.CSRFHeader, csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if _, csrf, code := login("tanaka", "tanaka-password"); code != 401 || csrf != "" {
		t.Fatalf("the replaced password logs in: %d", code)
	}
	anon := &http.Client{Timeout: 10 * time.Second}
	if code := do(anon, "GET", "/v1/events", "", ""); code != 401 {
		t.Errorf("no login: GET /v1/events %d, want 401", code)
	}
	viewer, vcsrf, code := login("tanaka", "tanaka-new-password")
	if code != 200 || vcsrf == "" {
		t.Fatalf("viewer login: %d, csrf %q", code, vcsrf)
	}
	analyst, acsrf, _ := login("sato", "sato-password")
	change := `{"add":["acct-1"],"reason":"test"}`
	for _, c := range []struct {
		name         string
		client       *http.Client
		method, path string
		csrf, body   string
		want         int
	}{
		{"viewer reads", viewer, "GET", "/v1/events", "", "", 200},
		{"viewer changes the denylist", viewer, "POST", "/v1/denylist", vcsrf, change, 403},
		{"analyst without CSRF token", analyst, "POST", "/v1/denylist", "", change, 403},
		{"analyst with another session's token", analyst, "POST", "/v1/denylist", vcsrf, change, 403},
		// No --denylist-key: past the role and CSRF checks, HQ cannot sign.
		{"analyst changes the denylist", analyst, "POST", "/v1/denylist", acsrf, change, 503},
	} {
		if got := do(c.client, c.method, c.path, c.csrf, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
