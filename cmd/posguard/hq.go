package main

import (
	"context"
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
	embed := fs.String("embed-broker", "", "run an embedded MQTT broker on this address (e.g. 127.0.0.1:1883)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP API address")
	share := fs.String("share", "", "shared-subscription group, so several HQ instances split the load")
	clientID := fs.String("client-id", "", `MQTT client id, stable across restarts so the broker keeps this instance's session (default "hq", or "hq-HOSTNAME" with --share: instances sharing a group need distinct ids)`)
	denyKey := fs.String("denylist-key", "", "private key (PEM PKCS#8) that signs denylist changes")
	denyKID := fs.String("denylist-kid", "", "key id of --denylist-key (default: its file name without .key)")
	var mc mqttconn.Config
	addTLSFlags(fs, &mc, "hq")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *brokerURL == "" && *embed == "" {
		return usagef("give --broker or --embed-broker")
	}
	if *brokerURL != "" {
		// Before anything is opened or created.
		if err := mqttconn.ValidateBroker(*brokerURL); err != nil {
			return err
		}
	}
	log := newLogger(std.err)

	if *embed != "" {
		b, err := broker.Start(broker.Options{Addr: *embed, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		log.Info("embedded MQTT broker listening", "url", b.URL())
		if *brokerURL == "" {
			*brokerURL = b.URL()
		}
	}
	mc.Broker, mc.Username = *brokerURL, "hq"

	var st store.Store
	var err error
	if *db != "" {
		st, err = store.OpenPostgres(ctx, *db)
	} else {
		st, err = store.OpenBolt(*state)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	if *clientID == "" {
		*clientID = "hq"
		if *share != "" {
			host, err := os.Hostname()
			if err != nil {
				return fmt.Errorf("--share needs a distinct --client-id per instance (hostname: %w)", err)
			}
			*clientID = "hq-" + host
		}
	}
	cfg := hq.Config{MQTT: mc, ClientID: *clientID, ShareGroup: *share, Store: st, Logger: log}
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
