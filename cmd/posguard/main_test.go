package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// runAt runs posguard in-process with its clock at now (zero: the real one).
func runAt(t *testing.T, now time.Time, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return cliIn(t, "", now, args...)
}

// cliIn is runAt with stdin.
func cliIn(t *testing.T, stdin string, now time.Time, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	std := stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	if !now.IsZero() {
		std.Now = func() time.Time { return now }
	}
	code = run(context.Background(), std, args)
	return code, out.String(), errb.String()
}

// listed reads the command names of a "Commands:" help text.
func listed(t *testing.T, help string) []string {
	t.Helper()
	_, list, ok := strings.Cut(help, "Commands:\n")
	if !ok {
		t.Fatalf("no command list in\n%s", help)
	}
	var names []string
	for _, l := range strings.Split(list, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		names = append(names, strings.Fields(l)[0])
	}
	return names
}

// Every command's -h goes to stdout with exit 0, like 'posguard help', so
// it can be paged; a bad flag prints the usage to stderr with exit 2.
func TestHelpGoesToStdout(t *testing.T) {
	_, top, _ := runAt(t, time.Time{}, "help")
	var cmds []string
	for _, c := range listed(t, top) {
		switch c {
		case "policy", "token":
			_, sub, _ := runAt(t, time.Time{}, c, "-h")
			for _, s := range listed(t, sub) {
				cmds = append(cmds, c+" "+s)
			}
		default:
			cmds = append(cmds, c)
		}
	}
	if len(cmds) < 15 {
		t.Fatalf("only %d commands found: %q", len(cmds), cmds)
	}
	for _, c := range cmds {
		t.Run(c, func(t *testing.T) {
			args := strings.Fields(c)
			code, out, errs := runAt(t, time.Time{}, append(args, "-h")...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "Usage: posguard "+c) {
				t.Fatalf("%s -h: exit %d, stderr %q, stdout %q", c, code, errs, out)
			}
			if code, viaHelp, _ := runAt(t, time.Time{}, append([]string{"help"}, args...)...); code != 0 || viaHelp != out {
				t.Errorf("help %s: exit %d, differs from -h:\n%s", c, code, viaHelp)
			}
			code, out, errs = runAt(t, time.Time{}, append(args, "--no-such-flag")...)
			if code != 2 || out != "" || !strings.Contains(errs, "flag provided but not defined: -no-such-flag") ||
				!strings.Contains(errs, "Usage: posguard "+c) {
				t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q", c, code, out, errs)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, errs := runAt(t, time.Time{}, "version")
	lines := strings.Split(out, "\n")
	if code != 0 || errs != "" || len(lines) != 4 || !strings.HasPrefix(lines[0], "posguard ") ||
		!strings.HasPrefix(lines[1], "revision: ") || !strings.HasPrefix(lines[2], "built: ") {
		t.Fatalf("version: exit %d, stderr %q, stdout %q", code, errs, out)
	}
	if code, _, errs := runAt(t, time.Time{}, "version", "extra"); code != 2 || !strings.Contains(errs, `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q", code, errs)
	}
}
