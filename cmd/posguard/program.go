// Command posguard is the single binary of posguard: the register agent, the
// HQ service, the store display and the tools around them. This package only
// registers commands; the framework and the commands posguard-agent shares
// live in cmd/internal/cli, the work in the packages they call.
package main

import (
	"context"
	"strings"

	"github.com/posguard/posguard/cmd/internal/cli"
)

// stdio is what a command may touch of the process.
type stdio = cli.Stdio

func program() cli.Program {
	return cli.Program{
		Name:  "posguard",
		About: "posguard guards store registers against fraudulent QR payments.",
		Commands: []cli.Command{
			cli.Agent,
			{Name: "hq", Summary: "run the headquarters service", Run: runHQ},
			{Name: "hq-token", Summary: "make an API token for the HQ service", Run: runHQToken},
			{Name: "hq-user", Summary: "add or replace a user of the HQ console", Run: runHQUser},
			{Name: "display", Summary: "run the store alert display", Run: runDisplay},
			{Name: "policy", Summary: "keygen, lint, eval, sign, push and test policies; generate test events", Run: cli.Group("policy",
				cli.PolicyKeygen, cli.PolicyLint, cli.PolicyEval,
				cli.Command{Name: "sign", Summary: "validate a policy and write it as a signed bundle", Run: runPolicySign},
				cli.Command{Name: "push", Summary: "sign a policy, publish it to the registers and follow them applying it", Run: runPolicyPush},
				cli.Command{Name: "test", Summary: "backtest a policy on recorded decision events", Run: runPolicyTest},
				cli.Command{Name: "gen-events", Summary: "generate a labelled synthetic month of a chain's QR payments", Run: runPolicyGenEvents},
			)},
			{Name: "token", Summary: "mint, inspect and render payment tokens", Run: cli.Group("token",
				cli.TokenMint, cli.TokenInspect, cli.TokenQR)},
			{Name: "scanner-sim", Summary: "play a script of scans on a virtual serial port", Run: runScannerSim},
			cli.Ports,
			{Name: "demo", Summary: "replay the 7pay attack on one machine", Run: runDemo},
			cli.Version,
		},
	}
}

func main() { cli.Main(program()) }

// run runs posguard in-process (tests).
func run(ctx context.Context, std stdio, args []string) int {
	return cli.Run(ctx, std, program(), args)
}

// hostList splits a comma-separated --allow-host value.
func hostList(s string) []string {
	var hosts []string
	for h := range strings.SplitSeq(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
