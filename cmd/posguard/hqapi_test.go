package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHQCLIArgs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-tokens")
	os.WriteFile(bad, []byte("ops root cert\n"), 0o600)
	cases := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"beyond loopback without tokens", []string{"hq", "--embed-broker", "127.0.0.1:0", "--listen", "0.0.0.0:0"}, 2, "beyond loopback: give --api-tokens"},
		{"all interfaces without tokens", []string{"hq", "--embed-broker", "127.0.0.1:0", "--listen", ":8080"}, 2, "beyond loopback"},
		{"client CA without TLS", []string{"hq", "--embed-broker", "127.0.0.1:0", "--api-client-ca", "ca.pem"}, 2, "--api-client-ca needs --api-tls-cert"},
		{"cert without key", []string{"hq", "--embed-broker", "127.0.0.1:0", "--api-tls-cert", "c.pem"}, 2, "together"},
		{"bad tokens file", []string{"hq", "--embed-broker", "127.0.0.1:0", "--api-tokens", bad}, 1, `line 1: role "root"`},
		{"token without name", []string{"hq-token", "--file", filepath.Join(dir, "t")}, 2, "give --file and --name"},
		{"token with a bad role", []string{"hq-token", "--file", filepath.Join(dir, "t"), "--name", "ops", "--role", "root"}, 2, `role "root"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", c.args...)
			if code != c.code || !strings.Contains(stderr, c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, stderr, c.code, c.wantErr)
			}
		})
	}
}

// hq-token writes only the hash, 0600; HQ started with the file answers
// the token and nothing else, metrics included.
func TestHQTokenAndAuthenticatedAPI(t *testing.T) {
	file := filepath.Join(t.TempDir(), "api-tokens")
	code, admin, stderr := runCLI(t, "", "hq-token", "--file", file, "--name", "fraud-desk", "--role", "admin")
	if code != 0 {
		t.Fatalf("hq-token: exit %d: %s", code, stderr)
	}
	admin = strings.TrimSpace(admin)
	if code, _, stderr := runCLI(t, "", "hq-token", "--file", file, "--name", "fraud-desk"); code != 1 || !strings.Contains(stderr, "already named") {
		t.Fatalf("a second token of the same name: exit %d %s", code, stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(file)
	if fi.Mode().Perm() != 0o600 || strings.Contains(string(body), admin) || !strings.HasPrefix(string(body), "fraud-desk admin sha256:") {
		t.Fatalf("tokens file %v: %q", fi.Mode(), body)
	}

	url := startHQCLI(t, "--api-tokens", file)
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/v1/events", "", 401},
		{"/metrics", "", 401},
		{"/v1/events", admin, 200},
		{"/metrics", admin, 200},
	} {
		req, _ := http.NewRequest("GET", url+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s (token %v): %d, want %d", c.path, c.token != "", resp.StatusCode, c.want)
		}
	}
}

// startHQCLI runs 'posguard hq' in-process with an embedded broker, a
// fresh bbolt file, --listen 127.0.0.1:0 and args, until the test ends,
// and returns the API's base URL from its log.
func startHQCLI(t *testing.T, args ...string) string {
	t.Helper()
	passwd := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(passwd, []byte("S001/R1:"+secretHash+"\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, stdio{In: strings.NewReader(""), Out: io.Discard, Err: pw}, append([]string{"hq", "--embed-broker", "127.0.0.1:0", "--embed-passwords", passwd,
			"--state", filepath.Join(t.TempDir(), "hq.db"), "--listen", "127.0.0.1:0"}, args...))
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("hq did not stop")
		}
	})
	sc := bufio.NewScanner(pr)
	var url string
	for url == "" && sc.Scan() {
		if strings.Contains(sc.Text(), "HQ API listening") {
			url = regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(sc.Text())
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatal("hq printed no API address")
	}
	return url
}
