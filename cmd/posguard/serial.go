package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/posguard/posguard/cmd/internal/cli"
	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/sim"
)

func runScannerSim(ctx context.Context, std stdio, args []string) error {
	fs := cli.NewFlags(std, "scanner-sim", "SCRIPT", `
Create a virtual scanner on a pseudo-terminal, print the path to open as its
serial port, and play SCRIPT ("-" reads standard input, line by line). The
path is a symlink owned by the simulator, so it stays the same across
unplug/replug. Script lines:

  ean13 4901234567894      a scan (also jan, ean8, upca, itf14, gs1-128,
                           code128, qr, datamatrix); the rest of the line is the data
  bad ean13 4901234567894  SSI: first transmission has a wrong checksum
  raw 02414243             bytes as they are, in hex
  sleep 200ms              pause
  unplug / replug          the port vanishes / comes back at the same path
  wait                     wait until the host opens the port
  # comment

Scans wait until the host has the port open. In SSI mode each packet waits
for the host's ACK; beeps, LEDs and other host commands are printed as
"< ..." lines, each played step as "> ...". When the script ends the
simulator waits until the host has opened the port and read everything
written to it, then exits (the host then sees the port vanish, as on an
unplug); --hold keeps the port open instead.`)
	mode := fs.String("mode", "line", "protocol: line or ssi")
	var prefix, suffix line.Bytes
	suffix = line.Bytes("\r")
	fs.Var(&prefix, "prefix", "line mode: bytes before each scan (CR, LF, CRLF, STX, 0x.., or escaped text)")
	fs.Var(&suffix, "suffix", "line mode: bytes after each scan (CR, LF, CRLF, 0x.., or escaped text)")
	withAIM := fs.Bool("aim", false, "line mode: send an AIM symbology identifier (]E0, ]Q1, ...) before the data")
	link := fs.String("link", "", "path of the symlink to create (default: in a new temporary directory)")
	posEcho := fs.String("pos-echo", "", "also create a POS-side port at this path and print what is written to it")
	ackTimeout := fs.Duration("ack-timeout", 500*time.Millisecond, "SSI mode: wait this long for the host's ACK before sending again")
	hold := fs.Bool("hold", false, "after the script, keep the port (and print feedback) until interrupted")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("want one SCRIPT argument (a file, or - for standard input), got %d", fs.NArg())
	}
	if *mode != string(sim.ModeLine) && *mode != string(sim.ModeSSI) {
		return cli.Usagef("--mode must be line or ssi, got %q", *mode)
	}
	if len(suffix) == 0 && *mode == string(sim.ModeLine) {
		return cli.Usagef("--suffix must not be empty in line mode: it ends each scan")
	}
	framing := line.Framing{Prefix: prefix, Suffix: suffix, AIM: *withAIM}
	out := &lockedWriter{w: std.Out} // the script, the feedback and the POS echo print concurrently
	var script io.Reader = std.In
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("script: %w", err)
		}
		defer f.Close()
		script = f
	}

	s, err := sim.New(sim.Options{Mode: sim.Mode(*mode), Framing: framing, Link: *link, AckTimeout: *ackTimeout,
		Log: slog.New(slog.NewTextHandler(std.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "scanner %s -> %s (mode %s)\n", s.Path(), s.Device(), *mode)
	if *posEcho != "" {
		pos, err := sim.NewPOS(*posEcho)
		if err != nil {
			return err
		}
		defer pos.Close()
		fmt.Fprintf(out, "pos %s\n", pos.Path())
		go echoPOS(ctx, pos, out)
	}
	if err := s.Play(ctx, script, out); err != nil {
		return err
	}
	if !*hold {
		// Closing now would take unread bytes with the pty: a reader that
		// opens the port late would get nothing but an I/O error.
		if err := s.Drain(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-s.Feedback():
			fmt.Fprintf(out, "< %s\n", e)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func echoPOS(ctx context.Context, pos *sim.POS, w io.Writer) {
	for {
		b, err := pos.Next(ctx, 1)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "pos < %q\n", append(b, pos.Take()...))
	}
}
