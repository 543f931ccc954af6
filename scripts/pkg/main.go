// Command pkg makes the .deb and .rpm packages of a posguard-agent binary
// (internal/pkgbuild, with nfpm). scripts/release.sh runs it from the
// repository root:
//
//	go run ./scripts/pkg -out dist dist/posguard-agent_linux_amd64
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/posguard/posguard/internal/atomicfile"
	"github.com/posguard/posguard/internal/pkgbuild"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "pkg:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "pkg:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist", "directory the packages are written to")
	formats := fs.String("formats", strings.Join(pkgbuild.Formats, ","), "comma-separated package formats: deb, rpm")
	version := fs.String("version", "", "package version as a Go module version (v1.2.0); default: the binary's module version")
	unit := fs.String("unit", "scripts/posguard-agent.service", "systemd unit of a hand install, rewritten for the package's paths")
	config := fs.String("config", "scripts/agent.example.yaml", "example configuration installed as "+pkgbuild.ConfigPath)
	license := fs.String("license", "LICENSE", "license text installed as "+pkgbuild.LicensePath)
	fs.Usage = func() {
		fmt.Fprintf(stdout, `Usage: go run ./scripts/pkg [flags] BINARY

Make the .deb and .rpm packages of a linux posguard-agent binary: the binary
as %s, the systemd unit, the example configuration as %s
(a configuration file kept on upgrade), the posguard system user (made by
the postinstall script), %s (root:posguard 0750) and %s
(posguard:posguard 0750).

The version and architecture are the binary's (its Go build information);
file times are SOURCE_DATE_EPOCH, else the binary's VCS commit time, so
the packages of one binary are the same bytes on every machine. Each
package written is printed on its own line.

Flags:
`, pkgbuild.BinaryPath, pkgbuild.ConfigPath, pkgbuild.ConfigDir, pkgbuild.StateDir)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one BINARY argument, got %d (see -h)", errUsage, fs.NArg())
	}
	binary := fs.Arg(0)
	bin, err := pkgbuild.ReadBinary(binary)
	if err != nil {
		return err
	}
	if *version != "" {
		bin.Version = *version
	}
	mtime, err := pkgbuild.MTime(os.Getenv("SOURCE_DATE_EPOCH"), bin)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(*unit)
	if err != nil {
		return err
	}
	unitText, err := pkgbuild.Unit(src)
	if err != nil {
		return fmt.Errorf("%s: %w", *unit, err)
	}
	spec := pkgbuild.Spec{Binary: binary, Unit: unitText, Config: *config, License: *license,
		Version: bin.Version, Arch: bin.Arch, MTime: mtime}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for f := range strings.SplitSeq(*formats, ",") {
		var buf bytes.Buffer
		name, err := pkgbuild.Build(strings.TrimSpace(f), spec, &buf)
		if err != nil {
			return err
		}
		path := filepath.Join(*out, name)
		if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}
