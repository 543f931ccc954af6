package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/policy/backtest"
	"github.com/posguard/posguard/policy/backtest/gen"
)

func runPolicyGenEvents(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "policy gen-events", "--out EVENTS.jsonl [--labels LABELS.jsonl]", `
Generate a labelled, synthetic but realistic data set for 'policy test': a
store chain's QR payments over --days days, as the events JSONL HQ exports,
and the ground truth per account as the labels file HQ's cases API exports.

Ordinary customers buy food, drinks and a pack now and then, top up when
their balance runs out, sometimes get a new phone or open an account.
Legitimate bulk buyers (offices buying 10 cartons, bar owners, regulars
buying two) pay from old accounts on old phones. Account-takeover crews
behave as in July 2019: accounts bound to the crew's phone shortly before,
most logged in from abroad, topped up with a stolen card within the hour
and spent on tobacco and e-cigarette cartons, 7-8 accounts in a row at one
store; lone victims are drained in one sale. Attacks peak a few days in.

Every sale is recorded as allowed (the registers of 2019 had no guard);
events carry no label, the labels file has one line per account that paid.
The same flags give byte-identical files.`)
	seed := fs.Uint64("seed", 1, "random `SEED`: the same seed and flags give the same files")
	days := fs.Int("days", 30, "number of `DAYS` to generate")
	start := fs.String("start", "2026-07-01", "first `DATE` (YYYY-MM-DD, Japan time)")
	stores := fs.Int("stores", 20, "number of `STORES` in the chain")
	registers := fs.Int("registers-per-store", 2, "registers (tills) per store")
	perDay := fs.Int("sales-per-day", 120, "ordinary QR `SALES` per store and day, on average")
	out := fs.String("out", "", "events `FILE` (JSONL) to write, - for standard output (required)")
	labelsOut := fs.String("labels", "", "labels `FILE` (JSONL) to write; none if not given")
	progress := fs.Bool("progress", false, "print progress on stderr even when it is not a terminal")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("gen-events takes no arguments, got %q", fs.Args())
	}
	if *out == "" {
		return cli.Usagef("gen-events needs --out (- for standard output)")
	}
	if *labelsOut == "-" || (*labelsOut != "" && *labelsOut == *out) {
		return cli.Usagef("--labels needs a file of its own")
	}
	day, err := time.ParseInLocation("2006-01-02", *start, gen.Zone)
	if err != nil {
		return cli.Usagef("--start %q: want a date as YYYY-MM-DD", *start)
	}
	cfg := gen.Config{Seed: *seed, Start: day, Days: *days, Stores: *stores, RegistersPerStore: *registers, SalesPerStoreDay: *perDay}
	for _, c := range []struct {
		name     string
		v, limit int
	}{{"--days", *days, gen.MaxDays}, {"--stores", *stores, gen.MaxStores},
		{"--registers-per-store", *registers, gen.MaxRegistersPerStore}, {"--sales-per-day", *perDay, gen.MaxSalesPerStoreDay}} {
		if c.v < 1 || c.v > c.limit {
			return cli.Usagef("%s %d: want 1 to %d", c.name, c.v, c.limit)
		}
	}
	tty := isTerminal(std.Err)
	if tty || *progress {
		p := progressPrinter(std.Err, tty, "days")
		cfg.Progress = func(done, total int) { p("generate", done, total) }
	}

	var events io.Writer = std.Out
	var files []*os.File
	create := func(path string) (*os.File, error) {
		f, err := os.Create(path)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	// A run cut short leaves no half-written file behind.
	ok := false
	defer func() {
		for _, f := range files {
			f.Close()
			if !ok {
				os.Remove(f.Name())
			}
		}
	}()
	if *out != "-" {
		f, err := create(*out)
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		events = f
	}
	var labels io.Writer
	if *labelsOut != "" {
		f, err := create(*labelsOut)
		if err != nil {
			return fmt.Errorf("labels: %w", err)
		}
		labels = f
	}
	st, err := gen.Generate(ctx, cfg, events, labels)
	if tty && cfg.Progress != nil {
		fmt.Fprint(std.Err, "\r\033[K")
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.Name(), err)
		}
	}
	files = nil
	ok = true
	fmt.Fprintf(std.Err, "%d sales over %d days at %d stores: %d fraud (%s, %d accounts, %d crew runs, %d lone victims), %d bulk buys; %d accounts paid\n",
		st.Sales, *days, *stores, st.FraudSales, backtest.Yen(st.FraudAmount), st.FraudAccounts, st.CrewVisits, st.Lone, st.BulkSales, st.Accounts)
	return nil
}
