package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/keyfile"
)

// signFlags are the flags naming the HQ policy signing key and the
// validity to sign with.
type signFlags struct {
	key, kid *string
	validFor *time.Duration
}

func addSignFlags(fs *flag.FlagSet) signFlags {
	return signFlags{
		key: fs.String("key", "", "HQ policy signing key (PEM PKCS#8, as written by 'posguard policy keygen --use hq')"),
		kid: fs.String("kid", "", "key id the registers trust it under (default: the key file name without .key)"),
		validFor: fs.Duration("valid-for", 0, "sign with metadata.issuedAt now and expiresAt this `DURATION` later (e.g. 720h), "+
			"whatever the file says; default: the file's own validity"),
	}
}

func (f signFlags) load() (crypto.Signer, string, string, error) {
	if *f.key == "" {
		return nil, "", "", cli.Usagef("--key is required")
	}
	signer, alg, err := keyfile.Load(*f.key)
	if err != nil {
		return nil, "", "", err
	}
	kid := *f.kid
	if kid == "" {
		kid = strings.TrimSuffix(filepath.Base(*f.key), ".key")
	}
	return signer, alg, kid, nil
}

// lintAndSign loads and validates a policy file and signs it; a policy with
// problems, or expired at now, is never signed. With --valid-for the
// policy is re-stamped valid from now: HQ re-issues a policy file without
// editing its dates.
func lintAndSign(path string, f signFlags, now time.Time) (*policy.Policy, []byte, error) {
	signer, alg, kid, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	if d := *f.validFor; d != 0 && d < time.Second {
		return nil, nil, cli.Usagef("--valid-for must be at least 1s, got %v", d)
	}
	p, err := policy.LoadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("policy not signed: %w", err)
	}
	if d := *f.validFor; d > 0 {
		// Whole seconds: the canonical form is RFC 3339 without fractions.
		at := now.UTC().Truncate(time.Second)
		p.Metadata.IssuedAt, p.Metadata.ExpiresAt = at, at.Add(d)
	}
	if p.Expired(now) {
		return nil, nil, fmt.Errorf("policy not signed: %s", cli.ExpiredProblem(p, now))
	}
	b, err := bundle.SignPolicy(signer, alg, kid, p)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

func runPolicySign(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "policy sign", "POLICY.yaml", `
Validate a policy and write it as a signed bundle (COSE_Sign1 over the
canonical JSON) to standard output, e.g.

  posguard policy sign --key keys/hq-1.key --valid-for 720h chain.yaml > chain.cose

A policy already expired is not signed (registers would refuse it), unless
--valid-for re-stamps it valid from now.`)
	sf := addSignFlags(fs)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("want one policy file, got %d arguments", fs.NArg())
	}
	_, b, err := lintAndSign(fs.Arg(0), sf, std.Clock())
	if err != nil {
		return err
	}
	_, err = std.Out.Write(b)
	return err
}

func runPolicyPush(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "policy push", "POLICY.yaml", `
Lint and sign a policy, publish it retained to the registers in scope, and
wait until they report the new version (or --timeout). Registers that are
offline take the retained bundle when they reconnect. As with 'policy sign',
--valid-for signs it valid from now for that long, whatever its file says.`)
	sf := addSignFlags(fs)
	var mc mqttconn.Config
	fs.StringVar(&mc.Broker, "broker", "", "MQTT broker URL (required)")
	cli.AddTLSFlags(fs, &mc, "hq")
	scope := fs.String("scope", "all", `"all" or one store id`)
	expect := fs.Int("expect", 0, "wait for this many registers (default: every register that has reported status)")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for registers to report")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("want one policy file, got %d arguments", fs.NArg())
	}
	if mc.Broker == "" {
		return cli.Usagef("--broker is required")
	}
	p, b, err := lintAndSign(fs.Arg(0), sf, std.Clock())
	if err != nil {
		return err
	}
	fmt.Fprintf(std.Err, "pushing %s v%d (%d bytes signed) to scope %s\n", p.Metadata.Name, p.Metadata.Version, len(b), *scope)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := push.Run(ctx, push.Options{MQTT: mc, Scope: *scope, Bundle: b, Version: p.Metadata.Version, Expect: *expect,
		Progress: func(r push.Report) {
			fmt.Fprintf(std.Err, "\rapplied %d  pending %d  refused %d  offline %d ", len(r.Applied), len(r.Pending), len(r.Refused), len(r.Offline))
		}})
	fmt.Fprintln(std.Err)
	for _, id := range rep.Applied {
		fmt.Fprintf(std.Out, "%s\tapplied v%d\n", id, p.Metadata.Version)
	}
	for id, reason := range rep.Refused {
		fmt.Fprintf(std.Out, "%s\trefused: %s\n", id, reason)
	}
	for _, id := range rep.Pending {
		fmt.Fprintf(std.Out, "%s\tpending\n", id)
	}
	for _, id := range rep.Offline {
		fmt.Fprintf(std.Out, "%s\toffline (will apply on reconnect)\n", id)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s: %d of the registers applied v%d", *timeout, len(rep.Applied), p.Metadata.Version)
	case err != nil:
		return err
	case len(rep.Refused) > 0:
		return fmt.Errorf("%d registers refused v%d", len(rep.Refused), p.Metadata.Version)
	case len(rep.Applied) == 0 && len(rep.Offline) == 0:
		fmt.Fprintln(std.Err, "no register has reported yet; the bundle is retained and applies when they connect")
	}
	return nil
}
