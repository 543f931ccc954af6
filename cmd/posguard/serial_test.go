package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/posout"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/internal/syncbuf"
)

func waitOutput(t *testing.T, ctx context.Context, b *syncbuf.Buffer, want string) {
	t.Helper()
	for !strings.Contains(b.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("output never had %q:\n%s", want, b.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestScannerSimCLI runs `posguard scanner-sim` in-process and drives a real
// Scanner and POS output against the ptys it creates.
func TestScannerSimCLI(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		mode   scanner.Mode
		expect string // in the command's output
	}{
		{"line CRLF aim", []string{"--suffix", "CRLF", "--aim"}, "", scanner.ModeLine, "> qr PG1:ABC"},
		{"ssi from stdin", []string{"--mode", "ssi"}, "ean13 4901234567894\nqr PG1:ABC\n", scanner.ModeSSI, "< param FF EE 01 9F 01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			dir := t.TempDir()
			scriptArg := "-"
			if tt.stdin == "" {
				scriptArg = filepath.Join(dir, "script.txt")
				if err := os.WriteFile(scriptArg, []byte("# demo\nean13 4901234567894\nsleep 1ms\nqr PG1:ABC\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			link, posLink := filepath.Join(dir, "scanner"), filepath.Join(dir, "pos")
			var out, errOut syncbuf.Buffer
			args := append([]string{"scanner-sim", "--link", link, "--pos-echo", posLink, "--hold"}, tt.args...)
			args = append(args, scriptArg)
			simCtx, stopSim := context.WithCancel(ctx)
			code := make(chan int, 1)
			go func() { code <- run(simCtx, stdio{In: strings.NewReader(tt.stdin), Out: &out, Err: &errOut}, args) }()
			waitOutput(t, ctx, &out, "scanner "+link+" -> /dev/pts/")

			f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
			log := slog.New(slog.DiscardHandler)
			sc, err := scanner.New(scanner.Config{Config: serialport.Config{Port: link}, Mode: tt.mode, Framing: f}, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			pos, err := posout.New(posout.Config{Config: serialport.Config{Port: posLink}, Framing: line.Framing{Suffix: line.Bytes("\r")}}, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			scans := make(chan scan.Scan, 4)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); sc.Run(ctx, scans) }()
			go func() { defer wg.Done(); pos.Run(ctx) }()
			for _, want := range []string{"4901234567894", "PG1:ABC"} {
				select {
				case s := <-scans:
					if string(s.Data) != want {
						t.Errorf("scan %q, want %q", s.Data, want)
					}
					for !pos.Up() {
						time.Sleep(time.Millisecond)
					}
					if err := pos.Send(s); err != nil {
						t.Fatal(err)
					}
				case <-ctx.Done():
					t.Fatalf("no scan %q; output:\n%s\n%s", want, out.String(), errOut.String())
				}
			}
			waitOutput(t, ctx, &out, tt.expect)
			waitOutput(t, ctx, &out, `PG1:ABC\r"`) // the POS echo prints what arrived together in one line
			stopSim()
			if c := <-code; c != 0 {
				t.Errorf("exit %d; stderr:\n%s", c, errOut.String())
			}
			cancel()
			wg.Wait()
			if _, err := os.Lstat(link); !os.IsNotExist(err) {
				t.Errorf("link %s left behind: %v", link, err)
			}
		})
	}
}

func TestSerialCLIErrors(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
		wantOut string
	}{
		{[]string{"scanner-sim"}, 2, "want one SCRIPT argument", ""},
		{[]string{"scanner-sim", "--mode", "usb", "x"}, 2, "--mode must be line or ssi", ""},
		{[]string{"scanner-sim", "--suffix", "NONE", "x"}, 2, "--suffix must not be empty", ""},
		{[]string{"scanner-sim", "--suffix", "0xZZ", "x"}, 2, "bad hex", ""},
		{[]string{"scanner-sim", "--frobnicate", "x"}, 2, "flag provided but not defined", ""},
		{[]string{"scanner-sim", "/nonexistent/script"}, 1, "posguard scanner-sim: script: open /nonexistent/script: no such file", ""},
		{[]string{"scanner-sim", "-h"}, 0, "", "-pos-echo"},
		{[]string{"ports", "extra"}, 2, "takes no arguments", ""},
		{[]string{"ports", "-h"}, 0, "", "USB vendor/product id"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}, tt.args)
		if code != tt.code || !strings.Contains(errOut.String(), tt.wantErr) || !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d, %q and %q", tt.args, code, errOut.String(), out.String(), tt.code, tt.wantErr, tt.wantOut)
		}
	}
}

func TestScannerSimBadScriptLine(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), stdio{In: strings.NewReader("sleep 1ms\nwarp 9\n"), Out: &out, Err: &errOut}, []string{"scanner-sim", "-"})
	if code != 1 || !strings.Contains(errOut.String(), "script line 2: unknown command \"warp\"") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestScannerSimWaitsForSlowReader: without --hold the simulator does not
// exit with bytes unread; a host that opens the port and reads only after
// the script has ended still gets every byte, then the exit.
func TestScannerSimWaitsForSlowReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dir := t.TempDir()
	link := filepath.Join(dir, "scanner")
	var out, errOut syncbuf.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, stdio{In: strings.NewReader("raw 41420d\n"), Out: &out, Err: &errOut}, []string{"scanner-sim", "--link", link, "-"})
	}()
	waitOutput(t, ctx, &out, "scanner "+link+" -> /dev/pts/")
	p, err := serial.Open(link, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitOutput(t, ctx, &out, "> raw 41420d") // the script has ended
	select {
	case c := <-code:
		t.Fatalf("scanner-sim exited (%d) with its bytes unread; stderr:\n%s", c, errOut.String())
	case <-time.After(300 * time.Millisecond):
	}
	p.SetReadTimeout(2 * time.Second)
	buf := make([]byte, 16)
	n, err := p.Read(buf)
	if err != nil || string(buf[:n]) != "AB\r" {
		t.Fatalf("read %q, %v; want \"AB\\r\"", buf[:n], err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d; stderr:\n%s", c, errOut.String())
		}
	case <-ctx.Done():
		t.Fatal("scanner-sim did not exit once its bytes were read")
	}
}
