// Command posguard is the single binary of posguard: the register agent, the
// HQ service, the store display and the tools around them. This package only
// parses flags and dispatches; the work lives in the packages it calls.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/version"
)

// stdio is what a command may touch of the process, passed in so tests can
// run commands in-process.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
	// now is the clock of commands that judge validity (policy expiry,
	// signing times); nil is time.Now. Tests set it to run the shipped
	// files at any date.
	now func() time.Time
}

func (s stdio) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, std stdio, args []string) error
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit code for a failure already reported to the user
// (lint findings, for example) so main does not print it again.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() []command {
	return []command{
		{"agent", "run the register daemon", runAgent},
		{"hq", "run the headquarters service", runHQ},
		{"hq-token", "make an API token for the HQ service", runHQToken},
		{"display", "run the store alert display", runDisplay},
		{"policy", "keygen, lint, eval, sign, push and test policies", runPolicy},
		{"token", "mint, inspect and render payment tokens", runToken},
		{"scanner-sim", "play a script of scans on a virtual serial port", runScannerSim},
		{"ports", "list serial ports", runPorts},
		{"demo", "replay the 7pay attack on one machine", runDemo},
		{"version", "print the version, VCS revision and build time", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and maps its error to an exit code:
// 0 ok, 1 failure, 2 usage error.
func run(ctx context.Context, std stdio, args []string) int {
	if len(args) == 0 {
		printHelp(std.err)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "help policy lint" is "policy lint -h".
			return run(ctx, std, append(append([]string(nil), args[1:]...), "-h"))
		}
		printHelp(std.out)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			return exitCode(std, name, c.run(ctx, std, args[1:]))
		}
	}
	fmt.Fprintf(std.err, "posguard: unknown command %q\n\n", name)
	printHelp(std.err)
	return 2
}

func exitCode(std stdio, name string, err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(std.err, "posguard %s: %s\nRun 'posguard %s -h' for usage.\n", name, ue.msg, name)
		return 2
	default:
		// A package's errors start with its name ("hq: no store",
		// "display: listen ..."), often the command's: say it once.
		msg := err.Error()
		if !strings.HasPrefix(msg, name+": ") && !strings.HasPrefix(msg, name+" ") {
			msg = name + ": " + msg
		}
		fmt.Fprintf(std.err, "posguard %s\n", msg)
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "posguard guards store registers against fraudulent QR payments.")
	fmt.Fprintln(w, "\nUsage: posguard <command> [flags] [args]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'posguard <command> -h' for the flags of a command.")
}

// newFlags makes a flag set that reports errors instead of exiting and
// prints a usage text naming the command and its arguments: to stdout for
// -h (so it pages with less, like 'posguard help'), to stderr after a
// mistake.
func newFlags(std stdio, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	o := &flagOutput{std: std}
	o.usage = func(w io.Writer) {
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		line := "posguard " + name
		if any {
			line += " [flags]"
		}
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace(line+" "+args), strings.TrimSpace(about))
		if any {
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(o)
		}
	}
	fs.SetOutput(o)
	// flag calls Usage for -h and for a bad flag alike; parseFlags, which
	// knows which it was, prints it.
	fs.Usage = func() {}
	return fs
}

// flagOutput is a flag set's output: flag's own messages go to stderr, and
// it carries the usage printer and stdout for parseFlags.
type flagOutput struct {
	std   stdio
	usage func(io.Writer)
}

func (o *flagOutput) Write(p []byte) (int, error) { return o.std.err.Write(p) }

// parseFlags parses args; a bad flag is a usage error (the usage goes to
// stderr), -h is flag.ErrHelp (the usage goes to stdout).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	o, _ := fs.Output().(*flagOutput)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if o != nil {
			o.usage(o.std.out)
		}
		return err
	default:
		if o != nil {
			o.usage(o.std.err)
		}
		return &exitError{code: 2}
	}
}

// subcommand dispatches a command with its own subcommands (policy, token).
func subcommand(ctx context.Context, std stdio, parent string, args []string, subs []command) error {
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: posguard %s <command> [flags] [args]\n\nCommands:\n", parent)
		for _, c := range subs {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, "\nRun 'posguard %s <command> -h' for the flags of a command.\n", parent)
	}
	if len(args) == 0 {
		help(std.err)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		help(std.out)
		return nil
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, std, args[1:])
		}
	}
	return usagef("unknown command %q", args[0])
}

// newLogger logs text lines to w (stderr); LOG_LEVEL=debug shows more.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// addTLSFlags adds the broker TLS flags every MQTT client command shares;
// identity names the certificate's CN, which the broker takes as username.
func addTLSFlags(fs *flag.FlagSet, c *mqttconn.Config, identity string) {
	fs.StringVar(&c.CAFile, "tls-ca", "", "PEM CA certificate that signed the broker's certificate")
	fs.StringVar(&c.CertFile, "tls-cert", "", "PEM client certificate for the broker (CN "+identity+")")
	fs.StringVar(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.PasswordFile, "mqtt-password-file", "", "file whose first line is the MQTT password (brokers with a password file, such as posguard hq --embed-passwords); the username is "+identity)
}

func runVersion(ctx context.Context, std stdio, args []string) error {
	fs := newFlags(std, "version", "", `
Print the module version, the VCS revision the binary was built from and
its build date: SOURCE_DATE_EPOCH for a release build (scripts/release.sh),
else the commit time, never the clock of the build, so that builds are
reproducible. "(devel)" and "unknown" when the go command could not stamp
them (go run, -buildvcs=false, a build outside a VCS checkout).`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	_, err := io.WriteString(std.out, version.Read().Text("posguard"))
	return err
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
