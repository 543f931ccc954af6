package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/internal/atomicfile"
)

func runHQUser(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "hq-user", "", `
Add a user of the HQ console to 'posguard hq --console-users FILE', or
replace the user's line (a new password, another role): NAME ROLE and the
password's bcrypt hash. FILE is created 0600 if missing; other lines stay
as they are. Restart HQ to apply.

The password is read from the terminal, twice, without echo; or, when
standard input is not a terminal, from its first line (a second line, when
given, must repeat it). It is never a flag: flags show in the process list
and the shell's history.

Roles: viewer (every page, read only), analyst (also works cases and
changes the denylist and allowlist) and admin (also pushes policies and
manages users). Every change made in the console is recorded with the
user's name.`)
	file := fs.String("file", "", "the console users file (required)")
	name := fs.String("name", "", "the user's login name, recorded with every change the user makes (required)")
	role := fs.String("role", string(apiauth.Viewer), "viewer, analyst or admin")
	cost := fs.Int("cost", apiauth.DefaultCost, fmt.Sprintf("bcrypt cost, %d or more (each step doubles a guess's price and a login's time)", apiauth.MinCost))
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || *name == "" {
		return cli.Usagef("give --file and --name")
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q: the password is read from standard input, never given as an argument", fs.Arg(0))
	}
	if _, ok := apiauth.RoleOf(apiauth.UserRole(*role)); !ok {
		return cli.Usagef("--role %q: want viewer, analyst or admin", *role)
	}
	if *cost < apiauth.MinCost {
		return cli.Usagef("--cost %d: want %d or more", *cost, apiauth.MinCost)
	}
	if err := apiauth.CheckName(*name); err != nil {
		return cli.Usagef("--name: %v", err)
	}
	password, err := readNewPassword(std, *name)
	if err != nil {
		return err
	}
	line, err := apiauth.UserLine(*name, apiauth.UserRole(*role), password, *cost)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(*file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	existed := false
	if users, perr := apiauth.ParseUsers(strings.NewReader(string(old))); perr == nil {
		_, existed = users.Lookup(*name)
	}
	text, err := apiauth.ReplaceUser(string(old), *name, line)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if err := atomicfile.WriteFile(*file, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", *file, err)
	}
	what := "added to"
	if existed {
		what = "replaced in"
	}
	fmt.Fprintf(std.Err, "user %s (%s) %s %s; restart HQ to apply\n", *name, *role, what, *file)
	return nil
}

// readNewPassword reads a new password: from the terminal, twice and
// without echo, or from the first line of standard input.
func readNewPassword(std stdio, name string) (string, error) {
	if f, ok := std.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(std.Err, "Password for %s: ", name)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(std.Err)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(std.Err, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(std.Err)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(pw) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(pw))
	}
	sc := bufio.NewScanner(io.LimitReader(std.In, 4096))
	var lines []string
	for sc.Scan() && len(lines) < 2 {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if len(lines) == 0 {
		return "", errors.New("no password on standard input (give it on the first line, or run in a terminal)")
	}
	if len(lines) == 2 && lines[1] != "" && lines[1] != lines[0] {
		return "", errors.New("the passwords differ (the second line of standard input must repeat the first)")
	}
	return checkPassword(lines[0])
}

// minPasswordLen keeps out passwords a guess-limited login still gives
// up quickly.
const minPasswordLen = 10

func checkPassword(pw string) (string, error) {
	if len(pw) < minPasswordLen {
		return "", fmt.Errorf("password shorter than %d characters", minPasswordLen)
	}
	return pw, nil
}
