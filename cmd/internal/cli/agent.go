package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/cmd/internal/service"
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
On Windows, started by the service control manager ('posguard-agent
service install'), it runs as the service: stop and 'service reload' do
what SIGTERM and SIGHUP do, the log goes to the event log, and relative
paths in the configuration are relative to its directory.
See scripts/agent.example.yaml for every configuration key.`)
	cfgPath := fs.String("config", service.DefaultConfig(runtime.GOOS, os.Getenv), "configuration file (YAML)")
	check := fs.Bool("check", false, "validate the configuration file and its key files, then exit")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	if isSvc, err := service.IsService(); err != nil {
		return fmt.Errorf("service: %w", err)
	} else if isSvc && !*check {
		abs, err := filepath.Abs(*cfgPath)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		return service.Run(filepath.Dir(abs), func(ctx context.Context, reload <-chan struct{}, w io.Writer) error {
			return daemon(ctx, NewLogger(w), abs, reload)
		})
	}
	if *check {
		return checkConfig(std, *cfgPath)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // one pending reload reads the newest file anyway
				}
			case <-stop:
				return
			}
		}
	}()
	return daemon(ctx, NewLogger(std.Err), *cfgPath, reload)
}

// checkConfig is agent --check: every problem of the file, one per line.
func checkConfig(std Stdio, cfgPath string) error {
	log := NewLogger(std.Err)
	cfg, err := config.Load(cfgPath)
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		// Like policy lint: every problem, one per line.
		for _, p := range ve.Problems {
			fmt.Fprintf(std.Out, "%s: %s\n", cfgPath, p)
		}
		return &ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	warnConfig(log, cfgPath, cfg)
	// An unusable bootstrap policy is no configuration error (failMode
	// decides until a signed policy arrives), but worth a warning.
	if b := cfg.Policy.Bootstrap; b != "" {
		if p, err := policy.LoadFile(b); err != nil {
			log.Warn("policy.bootstrap: "+err.Error(), "config", cfgPath)
		} else if p.Expired(std.Clock()) {
			log.Warn(fmt.Sprintf("policy.bootstrap: %s v%d expired at %s", p.Metadata.Name, p.Metadata.Version,
				p.Metadata.ExpiresAt.Format(time.RFC3339)), "config", cfgPath)
		}
	}
	fmt.Fprintf(std.Out, "%s: ok (store %s, register %s)\n", cfgPath, cfg.Store, cfg.Register)
	return nil
}

// daemon runs the agent of the file at cfgPath until ctx ends, re-reading
// the file on each value of reload (SIGHUP, or the service's reload).
func daemon(ctx context.Context, log *slog.Logger, cfgPath string, reload <-chan struct{}) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	warnConfig(log, cfgPath, cfg)
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version.Read().Short()})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-reload:
			next, err := config.Load(cfgPath)
			if err != nil {
				log.Error("configuration not reloaded; keeping the running one", "err", err)
				continue
			}
			warnConfig(log, cfgPath, next)
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
