package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/internal/version"
	"github.com/posguard/posguard/policy"
)

// Agent is the register daemon.
var Agent = Command{"agent", "run the register daemon", runAgent}

func runAgent(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "agent", "", `
Run the register daemon: read scans from the scanner, forward item scans to
the POS, decide payment tokens with the active policy (durably, in the state
file, before the POS hears of them), hold reviews for a manager PIN, sync
with HQ over MQTT and serve the local API (health, metrics, status, decide,
reviews, events, outbox).

SIGTERM/SIGINT stop it cleanly; SIGHUP re-reads the configuration file.
See scripts/agent.example.yaml for every configuration key.`)
	cfgPath := fs.String("config", "/etc/posguard/agent.yaml", "configuration file (YAML)")
	check := fs.Bool("check", false, "validate the configuration file and its key files, then exit")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	log := NewLogger(std.Err)
	cfg, err := config.Load(*cfgPath)
	var ve *config.ValidationError
	if *check && errors.As(err, &ve) {
		// Like policy lint: every problem, one per line.
		for _, p := range ve.Problems {
			fmt.Fprintf(std.Out, "%s: %s\n", *cfgPath, p)
		}
		return &ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	warnConfig(log, *cfgPath, cfg)
	if *check {
		// An unusable bootstrap policy is no configuration error (failMode
		// decides until a signed policy arrives), but worth a warning.
		if b := cfg.Policy.Bootstrap; b != "" {
			if p, err := policy.LoadFile(b); err != nil {
				log.Warn("policy.bootstrap: "+err.Error(), "config", *cfgPath)
			} else if p.Expired(std.Clock()) {
				log.Warn(fmt.Sprintf("policy.bootstrap: %s v%d expired at %s", p.Metadata.Name, p.Metadata.Version,
					p.Metadata.ExpiresAt.Format(time.RFC3339)), "config", *cfgPath)
			}
		}
		fmt.Fprintf(std.Out, "%s: ok (store %s, register %s)\n", *cfgPath, cfg.Store, cfg.Register)
		return nil
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version.Read().Short()})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			next, err := config.Load(*cfgPath)
			if err != nil {
				log.Error("configuration not reloaded; keeping the running one", "err", err)
				continue
			}
			warnConfig(log, *cfgPath, next)
			a.Reload(next)
		}
	}
}

// warnConfig logs what the configuration allows but should not (a secret
// file other users can read).
func warnConfig(log *slog.Logger, path string, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn(w.String(), "config", path)
	}
}
