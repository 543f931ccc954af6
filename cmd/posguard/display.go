package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/display"
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
	fs := newFlags(std, "display", "", displayAbout)
	broker := fs.String("broker", "", "MQTT broker URL, e.g. tcp://127.0.0.1:1883 or ssl://broker:8883 (required)")
	store := fs.String("store", "", "store id whose registers to show (required)")
	listen := fs.String("listen", display.DefaultListen, "HTTP listen address; beyond loopback requires -password-hash or -password-hash-file")
	hash := fs.String("password-hash", "", "bcrypt hash of the store login password")
	hashFile := fs.String("password-hash-file", "", "file holding the bcrypt hash of the store login password")
	tlsCA := fs.String("tls-ca", "", "PEM CA bundle to verify the broker's certificate")
	tlsCert := fs.String("tls-cert", "", "PEM client certificate for the broker (CN display/STORE)")
	tlsKey := fs.String("tls-key", "", "PEM private key of -tls-cert")
	httpsCert := fs.String("https-cert", "", "PEM certificate to serve the page over HTTPS")
	httpsKey := fs.String("https-key", "", "PEM private key of -https-cert")
	reviewTimeout := fs.Duration("review-timeout", 0, "how long registers hold a review (the countdown); 0 means 2m, set it to the registers' value")
	hashPassword := fs.Bool("hash-password", false, "read a password from stdin, print its bcrypt hash and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *hashPassword {
		return printPasswordHash(std)
	}
	if *broker == "" {
		return usagef("-broker is required")
	}
	if *store == "" {
		return usagef("-store is required")
	}
	if *hash != "" && *hashFile != "" {
		return usagef("give -password-hash or -password-hash-file, not both")
	}
	if *hashFile != "" {
		b, err := os.ReadFile(*hashFile)
		if err != nil {
			return fmt.Errorf("read password hash: %w", err)
		}
		*hash = strings.TrimSpace(string(b))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("-tls-cert and -tls-key go together")
	}
	if (*httpsCert == "") != (*httpsKey == "") {
		return usagef("-https-cert and -https-key go together")
	}
	brokerTLS, err := clientTLS(*tlsCA, *tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	var https *tls.Config
	if *httpsCert != "" {
		cert, err := tls.LoadX509KeyPair(*httpsCert, *httpsKey)
		if err != nil {
			return fmt.Errorf("load https certificate %s: %w", *httpsCert, err)
		}
		https = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := display.New(display.Config{
		Store: *store, Broker: *broker, TLS: brokerTLS, Listen: *listen,
		PasswordHash: *hash, HTTPS: https, ReviewTimeout: *reviewTimeout,
		Log: slog.New(slog.NewTextHandler(std.err, nil)),
	})
	if err != nil {
		return err
	}
	scheme := "http"
	if https != nil {
		scheme = "https"
	}
	return srv.Run(ctx, func(addr string) {
		fmt.Fprintf(std.out, "posguard display for store %s on %s://%s/\n", *store, scheme, addr)
	})
}

// clientTLS builds the broker TLS configuration; nil when no flag is set
// (the broker URL's scheme then decides, e.g. tcp:// is plain).
func clientTLS(ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read broker CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA %s: no PEM certificates", ca)
		}
		cfg.RootCAs = pool
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("load broker client certificate %s: %w", cert, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// printPasswordHash reads one line (the password) from stdin and prints
// its bcrypt hash, so a store can make -password-hash without other tools.
func printPasswordHash(std stdio) error {
	line, err := bufio.NewReader(std.in).ReadString('\n')
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		return usagef("empty password on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	fmt.Fprintln(std.out, string(h))
	return nil
}
