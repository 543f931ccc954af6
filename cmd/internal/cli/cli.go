// Package cli is the command-line framework of posguard's binaries and the
// commands more than one of them carries. posguard registers every command;
// posguard-agent, the register's binary, only those a register needs, so it
// links no HQ, PostgreSQL, embedded broker, display or demo. This package
// only parses flags and dispatches; the work lives in the packages it calls.
package cli

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

// Stdio is what a command may touch of the process, passed in so tests can
// run commands in-process.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Now is the clock of commands that judge validity (policy expiry,
	// signing times); nil is time.Now. Tests set it to run the shipped
	// files at any date.
	Now func() time.Time
	// prog is the binary's name for usage and error lines, set by Run.
	prog string
}

// Clock is the time by Now, or time.Now.
func (s Stdio) Clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Prog is the name of the running binary ("posguard", "posguard-agent").
func (s Stdio) Prog() string {
	if s.prog == "" {
		return "posguard"
	}
	return s.prog
}

// Command is one command (or one subcommand of a Group).
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, std Stdio, args []string) error
}

// Program is a binary: its name, the first line of its help and its
// commands.
type Program struct {
	Name     string
	About    string
	Commands []Command
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Usagef is a mistake in the command line: Run prints it with a pointer to
// the command's -h and exits 2.
func Usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// ExitError carries an exit code for a failure already reported to the user
// (lint findings, for example) so Run does not print it again.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Main runs p with the process's arguments and standard streams and exits;
// SIGINT and SIGTERM cancel the command's context.
func Main(p Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, p, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run dispatches args to a command of p and maps its error to an exit code:
// 0 ok, 1 failure, 2 usage error.
func Run(ctx context.Context, std Stdio, p Program, args []string) int {
	std.prog = p.Name
	if len(args) == 0 {
		printHelp(std.Err, p)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "help policy lint" is "policy lint -h".
			return Run(ctx, std, p, append(append([]string(nil), args[1:]...), "-h"))
		}
		printHelp(std.Out, p)
		return 0
	}
	for _, c := range p.Commands {
		if c.Name == name {
			return exitCode(std, name, c.Run(ctx, std, args[1:]))
		}
	}
	fmt.Fprintf(std.Err, "%s: unknown command %q\n\n", p.Name, name)
	printHelp(std.Err, p)
	return 2
}

func exitCode(std Stdio, name string, err error) int {
	var ue *usageError
	var ee *ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		fmt.Fprintf(std.Err, "%s %s: %s\nRun '%s %s -h' for usage.\n", std.Prog(), name, ue.msg, std.Prog(), name)
		return 2
	default:
		// A package's errors start with its name ("hq: no store",
		// "display: listen ..."), often the command's: say it once.
		msg := err.Error()
		if !strings.HasPrefix(msg, name+": ") && !strings.HasPrefix(msg, name+" ") {
			msg = name + ": " + msg
		}
		fmt.Fprintf(std.Err, "%s %s\n", std.Prog(), msg)
		return 1
	}
}

func printHelp(w io.Writer, p Program) {
	fmt.Fprintln(w, p.About)
	fmt.Fprintf(w, "\nUsage: %s <command> [flags] [args]\n\nCommands:\n", p.Name)
	cs := append([]Command(nil), p.Commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for the flags of a command.\n", p.Name)
}

// NewFlags makes a flag set that reports errors instead of exiting and
// prints a usage text naming the command and its arguments: to stdout for
// -h (so it pages with less, like 'posguard help'), to stderr after a
// mistake.
func NewFlags(std Stdio, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	o := &flagOutput{std: std}
	o.usage = func(w io.Writer) {
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		line := std.Prog() + " " + name
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
	// flag calls Usage for -h and for a bad flag alike; ParseFlags, which
	// knows which it was, prints it.
	fs.Usage = func() {}
	return fs
}

// flagOutput is a flag set's output: flag's own messages go to stderr, and
// it carries the usage printer and stdout for ParseFlags.
type flagOutput struct {
	std   Stdio
	usage func(io.Writer)
}

func (o *flagOutput) Write(p []byte) (int, error) { return o.std.Err.Write(p) }

// ParseFlags parses args; a bad flag is a usage error (the usage goes to
// stderr), -h is flag.ErrHelp (the usage goes to stdout).
func ParseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	o, _ := fs.Output().(*flagOutput)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if o != nil {
			o.usage(o.std.Out)
		}
		return err
	default:
		if o != nil {
			o.usage(o.std.Err)
		}
		return &ExitError{Code: 2}
	}
}

// Group is a command with its own subcommands (policy, token); each binary
// groups the subcommands it carries.
func Group(parent string, subs ...Command) func(ctx context.Context, std Stdio, args []string) error {
	return func(ctx context.Context, std Stdio, args []string) error {
		help := func(w io.Writer) {
			fmt.Fprintf(w, "Usage: %s %s <command> [flags] [args]\n\nCommands:\n", std.Prog(), parent)
			for _, c := range subs {
				fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
			}
			fmt.Fprintf(w, "\nRun '%s %s <command> -h' for the flags of a command.\n", std.Prog(), parent)
		}
		if len(args) == 0 {
			help(std.Err)
			return &ExitError{Code: 2}
		}
		switch args[0] {
		case "-h", "-help", "--help", "help":
			help(std.Out)
			return nil
		}
		for _, c := range subs {
			if c.Name == args[0] {
				return c.Run(ctx, std, args[1:])
			}
		}
		return Usagef("unknown command %q", args[0])
	}
}

// NewLogger logs text lines to w (stderr); LOG_LEVEL=debug shows more.
func NewLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// AddTLSFlags adds the broker TLS flags every MQTT client command shares;
// identity names the certificate's CN, which the broker takes as username.
func AddTLSFlags(fs *flag.FlagSet, c *mqttconn.Config, identity string) {
	fs.StringVar(&c.CAFile, "tls-ca", "", "PEM CA certificate that signed the broker's certificate")
	fs.StringVar(&c.CertFile, "tls-cert", "", "PEM client certificate for the broker (CN "+identity+")")
	fs.StringVar(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.PasswordFile, "mqtt-password-file", "", "file whose first line is the MQTT password (brokers with a password file, such as posguard hq --embed-passwords); the username is "+identity)
}

// Version prints the build's version.
var Version = Command{"version", "print the version, VCS revision and build date", runVersion}

func runVersion(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "version", "", `
Print the module version, the VCS revision the binary was built from and
its build date: SOURCE_DATE_EPOCH for a release build (scripts/release.sh),
else the commit time, never the clock of the build, so that builds are
reproducible. "(devel)" and "unknown" when the go command could not stamp
them (go run, -buildvcs=false, a build outside a VCS checkout).`)
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	_, err := io.WriteString(std.Out, version.Read().Text(std.Prog()))
	return err
}
