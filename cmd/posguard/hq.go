package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/wire"
)

func runHQ(ctx context.Context, std stdio, args []string) error {
	fs := newFlags(std, "hq", "", `
Run the headquarters service: store every register's events, alerts and
status (each event once, by id, then acknowledged), serve the fleet view and
queries over HTTP, and sign and publish denylist changes.

Without --db the store is a local bbolt file (--state). With --embed-broker
an MQTT broker runs in this process, for a one-machine setup.`)
	brokerURL := fs.String("broker", "", "MQTT broker URL (tcp://host:1883, ssl://host:8883); default: the embedded broker")
	db := fs.String("db", "", "PostgreSQL URL (postgres://user@host/db); default: a bbolt file")
	state := fs.String("state", "posguard-hq.db", "bbolt file used when --db is not given")
	embed := fs.String("embed-broker", "", "run an embedded MQTT broker on this address (e.g. 127.0.0.1:1883); needs --embed-passwords, or --embed-cert with --embed-client-ca")
	embedPasswords := fs.String("embed-passwords", "", "the embedded broker's password file: identity:bcrypt-hash lines (htpasswd -B -C 12), cost 10 or more")
	embedCert := fs.String("embed-cert", "", "the embedded broker's TLS server certificate (PEM); with --embed-client-ca clients authenticate by certificate, the CN being the identity")
	embedKey := fs.String("embed-key", "", "private key of --embed-cert")
	embedClientCA := fs.String("embed-client-ca", "", "CA (PEM) whose client certificates the embedded broker accepts (gen-certs.sh's ca.crt)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP API address")
	share := fs.String("share", "", "shared-subscription group, so several HQ instances split the load (each with its own --identity)")
	identity := fs.String("identity", "", `MQTT identity of this instance, username and client id: "hq" or "hq-NAME" (default: the CN of --tls-cert, else "hq"); instances sharing a group need distinct ones`)
	denyKey := fs.String("denylist-key", "", "private key (PEM PKCS#8) that signs denylist changes")
	denyKID := fs.String("denylist-kid", "", "key id of --denylist-key (default: its file name without .key)")
	var mc mqttconn.Config
	addTLSFlags(fs, &mc, "the --identity")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *brokerURL == "" && *embed == "" {
		return usagef("give --broker or --embed-broker")
	}
	log := newLogger(std.err)
	id, err := mc.Identity(cmp.Or(*identity, wire.HQUsername))
	if err != nil {
		return err
	}
	if *identity != "" && *identity != id {
		return usagef("--identity %s: the certificate --tls-cert is %s's", *identity, id)
	}
	if !wire.IsHQUsername(id) {
		return usagef(`identity %q: HQ identities are "hq" or "hq-NAME" (NAME: 1 to 32 of A-Z a-z 0-9 _ -)`, id)
	}
	mc.Username = id

	if *embed != "" {
		opts, err := embeddedBroker(*embed, *embedPasswords, *embedCert, *embedKey, *embedClientCA)
		if err != nil {
			return err
		}
		opts.Logger = log
		if *brokerURL == "" && mc.CertFile == "" && mc.PasswordFile == "" {
			// HQ in the broker's own process: a password made now and
			// known only to this process, so one-machine setups need no
			// file entry for HQ.
			if opts.Passwords, mc.Password, err = opts.Passwords.WithSecret(id); err != nil {
				return fmt.Errorf("--embed-passwords: %w (give HQ --mqtt-password-file, or another --identity)", err)
			}
			if opts.TLS != nil && opts.TLS.ClientCAs != nil {
				opts.TLS.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
		b, err := broker.Start(opts)
		if err != nil {
			return err
		}
		defer b.Close()
		log.Info("embedded MQTT broker listening", "url", b.URL())
		if *brokerURL == "" {
			*brokerURL = b.URL()
		}
	}
	mc.Broker = *brokerURL

	var st store.Store
	if *db != "" {
		st, err = store.OpenPostgres(ctx, *db)
	} else {
		st, err = store.OpenBolt(*state)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	cfg := hq.Config{MQTT: mc, ClientID: id, ShareGroup: *share, Store: st, Logger: log}
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	if *denyKey != "" {
		signer, alg, err := keyfile.Load(*denyKey)
		if err != nil {
			return err
		}
		kid := *denyKID
		if kid == "" {
			kid = strings.TrimSuffix(filepath.Base(*denyKey), ".key")
		}
		cfg.Signer, cfg.SignerAlg, cfg.SignerKID = signer, alg, kid
	}
	svc, err := hq.New(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", svc.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server", "err", err)
		}
	}()
	log.Info("HQ API listening", "url", "http://"+ln.Addr().String())

	err = svc.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return err
}

// embeddedBroker builds the embedded broker's options from the --embed-*
// flags: a password file, TLS with client certificates, or both.
func embeddedBroker(addr, passwords, cert, key, clientCA string) (broker.Options, error) {
	opts := broker.Options{Addr: addr, Passwords: &broker.Passwords{}}
	if passwords != "" {
		p, err := broker.LoadPasswords(passwords)
		if err != nil {
			return opts, err
		}
		opts.Passwords = p
	}
	if (cert == "") != (key == "") {
		return opts, usagef("--embed-cert and --embed-key: give both or neither")
	}
	if clientCA != "" && cert == "" {
		return opts, usagef("--embed-client-ca needs --embed-cert and --embed-key")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return opts, fmt.Errorf("embedded broker certificate: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert}
		if clientCA != "" {
			pem, err := os.ReadFile(clientCA)
			if err != nil {
				return opts, fmt.Errorf("--embed-client-ca: %w", err)
			}
			opts.TLS.ClientCAs = x509.NewCertPool()
			if !opts.TLS.ClientCAs.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("--embed-client-ca %s: no PEM certificate in it", clientCA)
			}
		}
		switch {
		case clientCA == "": // TLS only to protect the passwords
			opts.TLS.ClientAuth = tls.NoClientCert
		case passwords != "":
			opts.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	if passwords == "" {
		if opts.TLS == nil || opts.TLS.ClientCAs == nil {
			return opts, usagef("--embed-broker needs --embed-passwords, or --embed-cert, --embed-key and --embed-client-ca: the broker refuses anonymous clients")
		}
		opts.Passwords = nil
	}
	return opts, nil
}
