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

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/secretfile"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/wire"
)

func runHQ(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "hq", "", `
Run the headquarters service: store every register's events, alerts and
status (each event once, by id, then acknowledged), serve the fleet view and
queries over HTTP, and sign and publish denylist changes.

Without --db the store is a local bbolt file (--state). With --embed-broker
an MQTT broker runs in this process, for a one-machine setup.

The same listener serves the HQ console, the fraud team's web pages, at
/console/ (Japanese first; ?lang=en for English). Its users log in with a
password from --console-users (make users with 'posguard hq-user'); their
session calls the API with their role.

The HTTP API needs a caller authenticated on every endpoint but /healthz:
by --api-tokens (Authorization: Bearer TOKEN, or a TLS client certificate
named in the file when --api-client-ca is given) or by a console login.
Roles: read (viewer) may query, analyst may also change the denylist and
allowlist and move cases, admin may do everything. With neither
--api-tokens nor --console-users the API and the console are open, which
HQ allows on a loopback --listen only. Make tokens with 'posguard hq-token'.

With --chain-rules HQ evaluates chain rules over every store's events as
they are stored (one account paying at many stores, a refusal followed by
a payment elsewhere, ...) and acts on them: alerts to the stores'
displays, automatic denylist entries with an expiry (needs
--denylist-key), cases. The file is checked at start, every problem
printed; --check-chain-rules FILE only checks it and exits (status 1 on
problems).`)
	brokerURL := fs.String("broker", "", "MQTT broker URL (tcp://host:1883, ssl://host:8883), or a cluster's nodes comma-separated; default: the embedded broker")
	db := fs.String("db", "", "PostgreSQL URL (postgres://user@host/db); default: a bbolt file")
	state := fs.String("state", "posguard-hq.db", "bbolt file used when --db is not given")
	embed := fs.String("embed-broker", "", "run an embedded MQTT broker on this address (e.g. 127.0.0.1:1883); needs --embed-passwords, or --embed-cert with --embed-client-ca")
	embedPasswords := fs.String("embed-passwords", "", "the embedded broker's password file: identity:bcrypt-hash lines (htpasswd -B -C 12), cost 10 or more")
	embedCert := fs.String("embed-cert", "", "the embedded broker's TLS server certificate (PEM); with --embed-client-ca clients authenticate by certificate, the CN being the identity")
	embedKey := fs.String("embed-key", "", "private key of --embed-cert")
	embedClientCA := fs.String("embed-client-ca", "", "CA (PEM) whose client certificates the embedded broker accepts (gen-certs.sh's ca.crt)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP API and console address; beyond loopback it needs --api-tokens or --console-users")
	tokensFile := fs.String("api-tokens", "", "API tokens file (made by 'posguard hq-token'): who may call the API, with which role")
	usersFile := fs.String("console-users", "", "console users file (made by 'posguard hq-user'): who may log in to the console, with which role")
	apiCert := fs.String("api-tls-cert", "", "PEM certificate: serve the API over HTTPS")
	apiKey := fs.String("api-tls-key", "", "PEM private key of --api-tls-cert")
	apiClientCA := fs.String("api-client-ca", "", "PEM CA of API client certificates (their CN is named in --api-tokens with 'cert')")
	share := fs.String("share", "", "shared-subscription group, so several HQ instances split the load (each with its own --identity)")
	identity := fs.String("identity", "", `MQTT identity of this instance, username and client id: "hq" or "hq-NAME" (default: the CN of --tls-cert, else "hq"); instances sharing a group need distinct ones`)
	denyKey := fs.String("denylist-key", "", "private key (PEM PKCS#8) that signs denylist and allowlist changes")
	allowHost := fs.String("allow-host", "", "further host names clients use for the HTTP API, comma-separated (others are refused against DNS rebinding)")
	denyKID := fs.String("denylist-kid", "", "key id of --denylist-key (default: its file name without .key)")
	natsURLs := fs.String("nats", "", "NATS cluster URLs (nats://n1:4222,nats://n2:4222): take the registers' events from a JetStream stream there instead of MQTT subscriptions; several instances split the load (instead of --share)")
	var js hq.JetStream
	fs.IntVar(&js.Replicas, "nats-replicas", 3, "replicas of the JetStream stream and consumer (1 on a single NATS server)")
	fs.StringVar(&js.CAFile, "nats-ca", "", "CA (PEM) that signed the NATS servers' certificates")
	fs.StringVar(&js.CertFile, "nats-cert", "", "client certificate (PEM) for NATS; scripts/nats maps its CN to HQ's user")
	fs.StringVar(&js.KeyFile, "nats-key", "", "private key of --nats-cert")
	chainRules := fs.String("chain-rules", "", "chain rules file (apiVersion posguard/v1, kind ChainRules) evaluated over the live event stream")
	checkChain := fs.String("check-chain-rules", "", "check a chain rules file, print every problem with its path, and exit")
	var mc mqttconn.Config
	cli.AddTLSFlags(fs, &mc, "the --identity")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *checkChain != "" {
		return checkChainRules(std, *checkChain) // hq_chain.go
	}
	var chainCfg hq.ChainConfig
	if *chainRules != "" {
		// Before anything is opened or connected: a wrong file stops HQ
		// with every problem listed.
		doc, err := chain.LoadFile(*chainRules)
		if err != nil {
			return err
		}
		chainCfg.Rules = doc
	}
	if *brokerURL == "" && *embed == "" {
		return cli.Usagef("give --broker or --embed-broker")
	}
	if *brokerURL != "" {
		// Before anything is opened or created.
		if err := (mqttconn.Config{Broker: *brokerURL}).Validate(); err != nil {
			return err
		}
	}
	if *natsURLs != "" && *share != "" {
		return cli.Usagef("give --nats or --share: both split the load among HQ instances")
	}
	log := cli.NewLogger(std.Err)
	var auth *apiauth.Tokens
	if *tokensFile != "" {
		var err error
		if auth, err = apiauth.Load(*tokensFile); err != nil {
			return err
		}
		if why := secretfile.Exposed(*tokensFile); why != "" {
			log.Warn("API tokens file: " + why)
		}
	}
	var users *apiauth.Users
	if *usersFile != "" {
		var err error
		if users, err = apiauth.LoadUsers(*usersFile); err != nil {
			return err
		}
		if why := secretfile.Exposed(*usersFile); why != "" {
			log.Warn("console users file: " + why)
		}
	}
	loopback, err := httpserve.IsLoopback(*listen)
	if err != nil {
		return cli.Usagef("--listen %v", err)
	}
	if !loopback && auth == nil && users == nil {
		return cli.Usagef("--listen %s is beyond loopback: give --api-tokens or --console-users, so that only known callers read events and change the denylist", *listen)
	}
	if (*apiCert == "") != (*apiKey == "") {
		return cli.Usagef("give --api-tls-cert and --api-tls-key together")
	}
	if *apiClientCA != "" && (*apiCert == "" || auth == nil) {
		return cli.Usagef("--api-client-ca needs --api-tls-cert and --api-tokens (which names the certificates)")
	}
	tlsConf, err := apiTLS(*apiCert, *apiKey, *apiClientCA)
	if err != nil {
		return err
	}
	id, err := mc.Identity(cmp.Or(*identity, wire.HQUsername))
	if err != nil {
		return err
	}
	if *identity != "" && *identity != id {
		return cli.Usagef("--identity %s: the certificate --tls-cert is %s's", *identity, id)
	}
	if !wire.IsHQUsername(id) {
		return cli.Usagef(`identity %q: HQ identities are "hq" or "hq-NAME" (NAME: 1 to 32 of A-Z a-z 0-9 _ -)`, id)
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

	cfg := hq.Config{MQTT: mc, ClientID: id, ShareGroup: *share, Store: st, Logger: log, Auth: auth, Users: users,
		APIListen: *listen, APIHosts: hostList(*allowHost), Chain: chainCfg}
	if *natsURLs != "" {
		js.URLs = *natsURLs
		cfg.JetStream = &js
	}
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
	handler := svc.Handler(hq.Route{Pattern: "GET /metrics", Role: apiauth.Read, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	srv, ln := httpserve.Server(ln, handler, hq.APILimits(), log)
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
		srv.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server", "err", err)
		}
	}()
	log.Info("HQ API listening", "url", scheme+"://"+ln.Addr().String(), "auth", auth != nil, "consoleUsers", users != nil)
	log.Info("HQ console", "url", scheme+"://"+ln.Addr().String()+"/console/", "open", auth == nil && users == nil)

	err = svc.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return err
}

// apiTLS is the API's TLS configuration: none without a certificate; with a
// client CA, a client certificate is asked for and verified when offered
// (token callers need none).
func apiTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("API TLS certificate: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("API client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("API client CA %s: no PEM certificate", clientCA)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return conf, nil
}

func runHQToken(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "hq-token", "", `
Make an API token for 'posguard hq --api-tokens FILE': append its line (the
name, the role and the token's SHA-256; never the token) to FILE, created
0600 if missing, and print the token once on stdout. Give it to the caller,
who sends it as 'Authorization: Bearer TOKEN'. Remove a caller by deleting
its line and restarting HQ.

Roles: read (fleet, events, alerts, denylist status, cases, metrics),
analyst (read, and denylist and allowlist changes and case moves, each
recorded with the caller's name) and admin (everything, also policy pushes
and user management).`)
	file := fs.String("file", "", "the tokens file (required)")
	name := fs.String("name", "", "who the token is for, recorded with every change it makes (required)")
	role := fs.String("role", "read", "read, analyst or admin")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || *name == "" {
		return cli.Usagef("give --file and --name")
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	token, line, err := apiauth.NewToken(*name, apiauth.Role(*role))
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if old, err := os.ReadFile(*file); err == nil {
		if _, err := apiauth.Parse(strings.NewReader(string(old) + line + "\n")); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *file, err)
	}
	fmt.Fprintln(std.Out, token)
	return nil
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
		return opts, cli.Usagef("--embed-cert and --embed-key: give both or neither")
	}
	if clientCA != "" && cert == "" {
		return opts, cli.Usagef("--embed-client-ca needs --embed-cert and --embed-key")
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
			return opts, cli.Usagef("--embed-broker needs --embed-passwords, or --embed-cert, --embed-key and --embed-client-ca: the broker refuses anonymous clients")
		}
		opts.Passwords = nil
	}
	return opts, nil
}
