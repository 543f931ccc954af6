package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/posguard/posguard/policy"
)

// PolicyLint is "policy lint".
var PolicyLint = Command{"lint", "validate a policy file and report every problem", runPolicyLint}

// PolicyEval is "policy eval".
var PolicyEval = Command{"eval", "decide one request with a policy and print the decision", runPolicyEval}

func runPolicyLint(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "policy lint", "FILE", `
Validate a policy file (YAML) and report every problem at once, one per line
as "FILE: path: reason". Exit 0 with a one-line summary when the policy is
valid, 1 when it has problems.

A policy whose metadata.expiresAt has passed (by this machine's clock, or
--at) is still valid as a document: lint warns on stderr and exits 0, so a
check of a policy kept in a repository does not start failing on a date.
Registers refuse an expired policy, so 'policy sign' and 'policy push'
refuse to sign one unless --valid-for gives it a fresh validity.`)
	at := fs.String("at", "", "check expiry at this `TIME` (RFC 3339) instead of now")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	now := std.Clock()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return Usagef("--at: %v", err)
		}
		now = t
	}
	if fs.NArg() != 1 {
		return Usagef("lint needs exactly one policy FILE, got %d arguments", fs.NArg())
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	p, err := policy.Load(data)
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			fmt.Fprintf(std.Out, "%s: %s\n", file, pr)
		}
		return &ExitError{Code: 1}
	}
	if err != nil {
		return fmt.Errorf("load policy %s: %w", file, err)
	}
	if p.Expired(now) {
		fmt.Fprintf(std.Err, "%s: warning: %s\n", file, ExpiredProblem(p, now))
	}
	fmt.Fprintf(std.Out, "%s: ok: %s version %d, %d rules, expires %s\n",
		file, p.Metadata.Name, p.Metadata.Version, len(p.Rules), p.Metadata.ExpiresAt.Format(time.RFC3339))
	return nil
}

func runPolicyEval(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "policy eval", "", `
Decide one sale with a policy and print the Decision as JSON:
{"outcome", "policy": {"name", "version"}, "rules": [{"id", "action", "mode", "reason"}]}.
The request is policy.Request as JSON; the history is {"sales": [{"at",
"account", "store", "register", "lines"}], "denylist": [...]}. See
policy/testdata/README.md. Exit 0 whatever the outcome.`)
	policyFile := fs.String("policy", "", "policy `FILE` (YAML) to decide with (required)")
	requestFile := fs.String("request", "", "request `FILE` (JSON, policy.Request) to decide (required)")
	historyFile := fs.String("history", "", "history `FILE` (JSON: past sales and denylist); empty history if not given")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return Usagef("eval takes no arguments, got %q", fs.Args())
	}
	if *policyFile == "" || *requestFile == "" {
		return Usagef("eval needs --policy and --request")
	}
	p, err := policy.LoadFile(*policyFile)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*requestFile)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	var req policy.Request
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("decode request %s: %w", *requestFile, err)
	}
	var hist policy.History
	if *historyFile != "" {
		h, err := policy.LoadHistoryFile(*historyFile)
		if err != nil {
			return err
		}
		hist = h
	}
	d := policy.Evaluate(p, req, hist)
	out, err := policy.DecisionJSON(d)
	if err != nil {
		return err
	}
	_, err = std.Out.Write(out)
	return err
}

// ExpiredProblem says that p has expired at now, and how to sign it anyway.
func ExpiredProblem(p *policy.Policy, now time.Time) string {
	return fmt.Sprintf("metadata.expiresAt: expired at %s, before now (%s); registers refuse it unless it is signed with --valid-for",
		p.Metadata.ExpiresAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
}
