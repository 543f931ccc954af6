package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/internal/atomicfile"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/backtest"
	"github.com/posguard/posguard/policy/reason"
)

func runPolicyTest(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "policy test", "--policy NEW.yaml --events EVENTS.jsonl", `
Backtest a policy: replay recorded sale decisions through it in time order,
rebuilding the register history as it goes, and report per rule how often
it fires, how decisions change against a baseline (allow → deny, ...) and,
when events carry a label ("fraud" or "legit"), how much fraud each rule
catches and how many honest sales it touches.

EVENTS is JSONL, one agent event per line: what registers send to HQ and
what HQ exports with GET /v1/events?format=jsonl. Decision events are
replayed; alerts, resolutions and refusals are counted and skipped. A bad
line is reported with its number and reason and the replay goes on.

LABELS (--labels) is ground truth per account, JSON lines as HQ's cases
API exports them (GET /v1/cases/labels):
  {"account":"…","label":"fraud"|"legit","case":"C-…","at":"RFC 3339"}
case and at are optional; with at, the label covers the account's sales
from that instant on. It decides the label of every sale of the accounts
it lists; other sales keep their event's label. Precision and recall are
then reported overall and per rule. The whole file is refused if one line
is wrong.

The report lists the largest sales whose decision changed and the largest
held for review, each with its fired rules' reasons as the staff would read
them, in --lang (ja, the default, or en): the table shows the first 20 of
each, the JSON and the HTML page up to 100.

--html FILE also writes the report as one self-contained page with charts
(fraud stopped against honest sales touched per threshold, yen stopped
against honest yen held, precision and recall per rule, the changed
decisions); it loads nothing from the network.

Without --baseline, decisions are compared with those recorded in the
events. Exit 0 when at least one sale was replayed, 1 when none could be,
2 on a usage error.`)
	policyFile := fs.String("policy", "", "policy `FILE` (YAML) to test (required)")
	eventsFile := fs.String("events", "", "events `FILE` (JSONL), - for standard input (required)")
	baselineFile := fs.String("baseline", "", "policy `FILE` (YAML) to compare with; default: the recorded decisions")
	denylistFile := fs.String("denylist", "", "`FILE` of accounts on the HQ denylist during the replay, one per line (# comments)")
	labelsFile := fs.String("labels", "", "ground truth `FILE`: one {\"account\", \"label\": \"fraud\"|\"legit\", \"case\", \"at\"} per line")
	retention := fs.Duration("retention", backtest.DefaultRetention, "how long the rebuilt history remembers a sale (the agent's retention)")
	htmlFile := fs.String("html", "", "also write the report as a self-contained HTML page with charts to `FILE`")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of tables")
	progress := fs.Bool("progress", false, "print progress on stderr even when it is not a terminal")
	lang := fs.String("lang", reason.Japanese, "word the listed sales' reasons in `LANG` (ja or en)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if !reason.Valid(*lang) {
		return cli.Usagef("--lang must be ja or en, not %q", *lang)
	}
	if fs.NArg() != 0 {
		return cli.Usagef("test takes no arguments, got %q", fs.Args())
	}
	if *policyFile == "" || *eventsFile == "" {
		return cli.Usagef("test needs --policy and --events")
	}
	if *htmlFile == "-" {
		return cli.Usagef("--html needs a file name: the table or the JSON goes to standard output")
	}
	if *retention <= 0 {
		return cli.Usagef("--retention must be > 0, got %s", *retention)
	}
	opts := backtest.Options{Retention: *retention, Lang: *lang}
	var err error
	if opts.Policy, err = policy.LoadFile(*policyFile); err != nil {
		return err
	}
	if *baselineFile != "" {
		if opts.Baseline, err = policy.LoadFile(*baselineFile); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	if *denylistFile != "" {
		if opts.Denylist, err = readDenylist(*denylistFile); err != nil {
			return err
		}
	}
	if *labelsFile != "" {
		f, err := os.Open(*labelsFile)
		if err != nil {
			return fmt.Errorf("labels: %w", err)
		}
		opts.Truth, err = backtest.ReadGroundTruth(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *labelsFile, err)
		}
	}
	var in io.Reader = std.In
	if *eventsFile != "-" {
		f, err := os.Open(*eventsFile)
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		defer f.Close()
		in = f
	}
	tty := isTerminal(std.Err)
	if tty || *progress {
		opts.Progress = progressPrinter(std.Err, tty, "sales")
	}

	rep, err := backtest.Run(ctx, in, opts)
	if tty && opts.Progress != nil {
		fmt.Fprint(std.Err, "\r\033[K") // clear the progress line
	}
	if err != nil && !errors.Is(err, backtest.ErrNothingReplayed) {
		return fmt.Errorf("backtest %s: %w", *eventsFile, err)
	}
	if *asJSON {
		if werr := backtest.WriteJSON(std.Out, rep); werr != nil {
			return werr
		}
	} else if werr := backtest.WriteTable(std.Out, rep); werr != nil {
		return werr
	}
	if *htmlFile != "" {
		var page bytes.Buffer
		if werr := backtest.WriteHTML(&page, rep); werr != nil {
			return werr
		}
		if werr := atomicfile.WriteFile(*htmlFile, page.Bytes(), 0o644); werr != nil {
			return fmt.Errorf("write HTML report: %w", werr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w (%d lines, %d bad)", *eventsFile, err, rep.Input.Lines, rep.Input.Bad)
	}
	return nil
}

// readDenylist reads one account per line; blank lines and # comments are
// skipped.
func readDenylist(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("denylist: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read denylist %s: %w", path, err)
	}
	return out, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressPrinter prints at most one progress line a second: rewritten in
// place on a terminal, one line each otherwise (logs, CI). unit names what
// a total counts.
func progressPrinter(w io.Writer, tty bool, unit string) func(phase string, done, total int) {
	var last time.Time
	return func(phase string, done, total int) {
		now := time.Now()
		if now.Sub(last) < time.Second {
			return
		}
		last = now
		msg := fmt.Sprintf("%s: %d lines", phase, done)
		if total > 0 {
			msg = fmt.Sprintf("%s: %d of %d %s (%d%%)", phase, done, total, unit, done*100/total)
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", msg)
		} else {
			fmt.Fprintln(w, msg)
		}
	}
}
