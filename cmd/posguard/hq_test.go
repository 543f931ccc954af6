package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// bcrypt (cost 10) of "secret".
const secretHash = "$2a$10$nof.Yjds/RKisSvlCknWbepTWg39XGH/5tjejrHmSuupdoprXtf0G"

func TestHQEmbeddedBrokerFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	cheap := filepath.Join(dir, "cheap")
	os.WriteFile(cheap, []byte("S001/R1:$2a$04$WhQ4varkj/kIBvyM8JELSun9rTkAvcGHuoOMh7K4udGLK2L/Wq8iS\n"), 0o600)
	good := filepath.Join(dir, "passwd")
	os.WriteFile(good, []byte("hq:"+secretHash+"\n"), 0o600)
	state := filepath.Join(dir, "hq.db")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--embed-broker", "127.0.0.1:0"}, 2, "refuses anonymous clients"},
		{[]string{"--embed-broker", "127.0.0.1:0", "--embed-passwords", cheap}, 1, "bcrypt cost 4 below the minimum 10"},
		{[]string{"--embed-broker", "127.0.0.1:0", "--embed-passwords", good, "--identity", "admin"}, 2, `identity "admin"`},
		// The file already names hq: the in-process HQ needs its password.
		{[]string{"--embed-broker", "127.0.0.1:0", "--embed-passwords", good}, 1, "identity hq is already in the password file"},
		{[]string{"--embed-broker", "127.0.0.1:0", "--embed-cert", "x.pem"}, 2, "--embed-cert and --embed-key"},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"hq", "--state", state, "--listen", "127.0.0.1:0"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("hq %v: exit %d, %q; want exit %d with %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

// TestHQEmbeddedBrokerAuthenticates runs `posguard hq --embed-broker
// --embed-passwords`: a register with its password connects, an anonymous
// client and one claiming "hq" do not.
func TestHQEmbeddedBrokerAuthenticates(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("# one register\nS001/R1:"+secretHash+"\n"), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, []string{"hq", "--embed-broker", addr,
			"--embed-passwords", passwd, "--state", filepath.Join(dir, "hq.db"), "--listen", "127.0.0.1:0"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("hq exit %d: %s", code, errb.String())
		}
	}()
	dial := func(user, password string) error {
		o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(user).SetConnectTimeout(time.Minute).
			SetAutoReconnect(false).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond)
		if user != "" {
			o.SetUsername(user).SetPassword(password)
		} else {
			o.SetClientID("anon").SetConnectRetry(false)
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(time.Minute) {
			c.Disconnect(0)
			return context.DeadlineExceeded
		}
		defer c.Disconnect(0)
		return tok.Error()
	}
	// With ConnectRetry the first dial also waits for the broker to be up.
	if err := dial("S001/R1", "secret"); err != nil {
		t.Fatalf("register with its password: %v", err)
	}
	if err := dial("", ""); err == nil {
		t.Error("an anonymous client connected")
	}
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("hq").SetUsername("hq").
		SetConnectTimeout(time.Minute).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(time.Minute) && tok.Error() == nil {
		c.Disconnect(0)
		t.Error(`a client claiming "hq" without a password connected`)
	}
}
