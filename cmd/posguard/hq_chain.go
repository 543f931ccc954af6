package main

import (
	"errors"
	"fmt"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/hq/chain"
)

// checkChainRules validates a chain rules file for --check-chain-rules:
// like policy lint, every problem on its own line with its key path, and
// exit status 1; on success a one-line summary.
func checkChainRules(std stdio, path string) error {
	d, err := chain.LoadFile(path)
	var ve *chain.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			fmt.Fprintf(std.Out, "%s: %s\n", path, p)
		}
		return &cli.ExitError{Code: 1}
	case err != nil:
		return err
	}
	enforce := 0
	for _, r := range d.Rules {
		if r.Mode == chain.ModeEnforce {
			enforce++
		}
	}
	fmt.Fprintf(std.Out, "%s: ok: chain rules %q, %d rule(s), %d enforced, %d in shadow\n",
		path, d.Metadata.Name, len(d.Rules), enforce, len(d.Rules)-enforce)
	return nil
}
