// Command posguard-agent is the register's binary: the agent daemon and the
// few tools a register needs (ports, token inspect, policy lint, version).
// It carries none of HQ, PostgreSQL, the embedded broker, the display or the
// demo, so it stays small enough for a POS terminal; posguard has the same
// commands, implemented once in cmd/internal/cli.
package main

import (
	"context"

	"github.com/posguard/posguard/cmd/internal/cli"
)

func program() cli.Program {
	return cli.Program{
		Name:  "posguard-agent",
		About: "posguard-agent guards this register against fraudulent QR payments.",
		Commands: []cli.Command{
			cli.Agent,
			cli.Ports,
			{Name: "policy", Summary: "lint a policy file", Run: cli.Group("policy", cli.PolicyLint)},
			{Name: "token", Summary: "inspect a payment token", Run: cli.Group("token", cli.TokenInspect)},
			cli.Version,
		},
	}
}

func main() { cli.Main(program()) }

// run runs posguard-agent in-process (tests).
func run(ctx context.Context, std cli.Stdio, args []string) int {
	return cli.Run(ctx, std, program(), args)
}
