package main

import (
	"context"
	"log/slog"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/demo"
)

func runDemo(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "demo", "", `
Run posguard on this machine and replay the 7pay attack of July 2019: an
embedded MQTT broker, HQ with a chain rule, two stores each with its display,
and three registers (two at s1, one at s2) whose barcode scanners and POS
ports are pseudo-terminals. HQ signs and pushes the example policy; then
ordinary shoppers, the Saitama victim's drained top-up, a ¥100,000 tobacco
buy, the Shinjuku crew cycling eight accounts at one till, a replayed QR
screenshot and an HQ denylist entry go through the real scanner → agent →
POS path. Last, the crew's reserve accounts move to store s2: HQ's chain rule
crew-hopping (account_stores) denylists them and s2 refuses them, naming the
rule. Each decision is printed as it is made.`)
	speed := fs.Float64("speed", 60, "time compression: scenario minutes per real minute (0: no pauses)")
	keep := fs.Bool("keep", false, "keep everything running after the summary, to look at the display")
	dir := fs.String("dir", "", "keep state files and keys in this directory (default: a temporary one)")
	listen := fs.String("display", "127.0.0.1:0", "address of store s1's display page (s2's takes a free port)")
	verbose := fs.Bool("v", false, "show the components' logs")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *speed < 0 {
		return cli.Usagef("--speed must be >= 0")
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = cli.NewLogger(std.Err)
	}
	_, err := demo.Run(ctx, demo.Options{Out: std.Out, Log: log, Speed: *speed, Keep: *keep, Dir: *dir, DisplayListen: *listen})
	return err
}
