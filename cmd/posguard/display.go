package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/display"
	"github.com/posguard/posguard/internal/mqttconn"
)

const displayAbout = `
Serve the store alert display: a page (embedded in the binary, no internet
needed) that shows the alerts and register status of one store live, and lets
a manager approve or reject held reviews with the manager PIN (checked by the
register; the display never stores PINs).

The page binds to 127.0.0.1 by default. To listen beyond the machine, give a
store login password hash (bcrypt); make one with
  posguard display -hash-password < password.txt
and preferably serve HTTPS (-https-cert, -https-key).`

func runDisplay(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "display", "", displayAbout)
	broker := fs.String("broker", "", "MQTT broker URL, e.g. tcp://127.0.0.1:1883 or ssl://broker:8883 (required)")
	store := fs.String("store", "", "store id whose registers to show (required)")
	listen := fs.String("listen", display.DefaultListen, "HTTP listen address; beyond loopback requires -password-hash or -password-hash-file")
	hash := fs.String("password-hash", "", "bcrypt hash of the store login password")
	hashFile := fs.String("password-hash-file", "", "file holding the bcrypt hash of the store login password")
	var mc mqttconn.Config
	cli.AddTLSFlags(fs, &mc, "display/STORE")
	httpsCert := fs.String("https-cert", "", "PEM certificate to serve the page over HTTPS")
	httpsKey := fs.String("https-key", "", "PEM private key of -https-cert")
	reviewTimeout := fs.Duration("review-timeout", 0, "how long registers hold a review (the countdown); 0 means 2m, set it to the registers' value")
	stateFile := fs.String("state", "", "file keeping open reviews, recent alerts and the broker session across restarts, so alerts sent while down still arrive; empty: a restart forgets them")
	allowHost := fs.String("allow-host", "", "further host names browsers use for the display, comma-separated (others are refused against DNS rebinding)")
	hashPassword := fs.Bool("hash-password", false, "read a password from stdin, print its bcrypt hash and exit")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *hashPassword {
		return printPasswordHash(std)
	}
	if *broker == "" {
		return cli.Usagef("-broker is required")
	}
	if *store == "" {
		return cli.Usagef("-store is required")
	}
	if *hash != "" && *hashFile != "" {
		return cli.Usagef("give -password-hash or -password-hash-file, not both")
	}
	if *hashFile != "" {
		b, err := os.ReadFile(*hashFile)
		if err != nil {
			return fmt.Errorf("read password hash: %w", err)
		}
		*hash = strings.TrimSpace(string(b))
	}
	if (mc.CertFile == "") != (mc.KeyFile == "") {
		return cli.Usagef("-tls-cert and -tls-key go together")
	}
	if (*httpsCert == "") != (*httpsKey == "") {
		return cli.Usagef("-https-cert and -https-key go together")
	}
	mc.Broker = *broker
	var https *tls.Config
	if *httpsCert != "" {
		cert, err := tls.LoadX509KeyPair(*httpsCert, *httpsKey)
		if err != nil {
			return fmt.Errorf("load https certificate %s: %w", *httpsCert, err)
		}
		https = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := display.New(display.Config{
		Store: *store, MQTT: mc, Listen: *listen,
		PasswordHash: *hash, HTTPS: https, ReviewTimeout: *reviewTimeout,
		StateFile: *stateFile, Log: cli.NewLogger(std.Err), Hosts: hostList(*allowHost),
	})
	if err != nil {
		return err
	}
	scheme := "http"
	if https != nil {
		scheme = "https"
	}
	return srv.Run(ctx, func(addr string) {
		fmt.Fprintf(std.Out, "posguard display for store %s on %s://%s/\n", *store, scheme, addr)
	})
}

// printPasswordHash reads one line (the password) from stdin and prints
// its bcrypt hash, so a store can make -password-hash without other tools.
func printPasswordHash(std stdio) error {
	line, err := bufio.NewReader(std.In).ReadString('\n')
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		return cli.Usagef("empty password on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	fmt.Fprintln(std.Out, string(h))
	return nil
}
