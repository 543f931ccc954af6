// Package pkgbuild makes the .deb and .rpm packages of the register agent
// with nfpm (github.com/goreleaser/nfpm/v2): the posguard-agent binary, its
// systemd unit, the example configuration as a configuration file kept on
// upgrade, the posguard system user made by the postinstall script, and
// /etc/posguard and /var/lib/posguard with their owners and modes.
//
// A package is a function of its inputs only: the version, architecture
// and file times come from the binary's build information (or
// SOURCE_DATE_EPOCH), never from the clock or the host, so that two builds
// of one commit give the same bytes.
package pkgbuild

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Name is the package's name, and the agent binary's.
const Name = "posguard-agent"

// Where the package puts its files.
const (
	BinaryPath  = "/usr/bin/posguard-agent"
	UnitPath    = "/usr/lib/systemd/system/posguard-agent.service"
	ConfigDir   = "/etc/posguard"
	ConfigPath  = "/etc/posguard/agent.yaml"
	StateDir    = "/var/lib/posguard"
	LicensePath = "/usr/share/doc/posguard-agent/copyright"
)

// Formats are the package formats Build makes.
var Formats = []string{"deb", "rpm"}

var (
	//go:embed maintainer/postinstall.sh
	postinstall string
	//go:embed maintainer/preremove.sh
	preremove string
	//go:embed maintainer/postremove.sh
	postremove string
)

// Spec is what one package is made of.
type Spec struct {
	Binary  string    // the posguard-agent binary, built for Arch
	Unit    []byte    // the systemd unit, as Unit returns it
	Config  string    // the example configuration, installed as ConfigPath
	License string    // the license text file, installed as LicensePath
	Version string    // Go module version: v1.2.0, a pseudo-version, +dirty
	Arch    string    // GOARCH, with the GOARM level for arm: amd64, arm64, arm7, 386
	MTime   time.Time // time of every file and of the package itself
}

// Build writes the package of format ("deb" or "rpm") to w and returns the
// conventional file name of it (posguard-agent_1.2.0_amd64.deb,
// posguard-agent-1.2.0-1.x86_64.rpm).
func Build(format string, s Spec, w io.Writer) (string, error) {
	if s.MTime.IsZero() {
		// nfpm would take the clock: the package would differ per build.
		return "", errors.New("build package: no file time (set SOURCE_DATE_EPOCH or build the binary with -buildvcs=true)")
	}
	ver, err := ParseVersion(s.Version)
	if err != nil {
		return "", fmt.Errorf("build package: %w", err)
	}
	pkgr, err := nfpm.Get(format)
	if err != nil {
		return "", fmt.Errorf("build package: %w", err)
	}
	tmp, err := os.MkdirTemp("", "posguard-pkg-")
	if err != nil {
		return "", fmt.Errorf("build package: %w", err)
	}
	defer os.RemoveAll(tmp)
	unit := tmp + "/posguard-agent.service"
	if err := os.WriteFile(unit, s.Unit, 0o644); err != nil {
		return "", fmt.Errorf("build package: %w", err)
	}
	scripts := nfpm.Scripts{}
	for _, sc := range []struct {
		dst  *string
		name string
		text string
	}{
		{&scripts.PostInstall, "postinstall.sh", postinstall},
		{&scripts.PreRemove, "preremove.sh", preremove},
		{&scripts.PostRemove, "postremove.sh", postremove},
	} {
		*sc.dst = tmp + "/" + sc.name
		if err := os.WriteFile(*sc.dst, []byte(sc.text), 0o755); err != nil {
			return "", fmt.Errorf("build package: %w", err)
		}
	}

	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: m, MTime: s.MTime}
	}
	licenseType := "" // deb: Debian's copyright file
	if format == "rpm" {
		licenseType = files.TypeRPMLicense
	}
	info := &nfpm.Info{
		Name:          Name,
		Arch:          s.Arch,
		Platform:      "linux",
		Version:       ver.Version,
		VersionSchema: "none", // ParseVersion has split it
		Prerelease:    ver.Prerelease,
		// "+dirty" stays visible: a package of a modified tree is not
		// the package of its commit.
		VersionMetadata: ver.Metadata,
		Release:         "1",
		Section:         "net",
		Priority:        "optional",
		Maintainer:      "posguard <posguard@example.invalid>",
		Vendor:          "posguard",
		Homepage:        "https://github.com/posguard/posguard",
		License:         "Apache-2.0",
		Description:     "posguard register agent\nStands between the barcode scanner and the POS application of a store register\nand decides on every smartphone payment whether the sale may go ahead.",
		MTime:           s.MTime,
		Overridables: nfpm.Overridables{
			Umask: 0o022,
			Contents: files.Contents{
				{Source: s.Binary, Destination: BinaryPath, FileInfo: mode(0o755)},
				{Source: unit, Destination: UnitPath, FileInfo: mode(0o644)},
				{Source: s.License, Destination: LicensePath, Type: licenseType, FileInfo: mode(0o644)},
				// Owners: root here, posguard set by postinstall (the user
				// does not exist yet when the files are unpacked).
				{Destination: ConfigDir, Type: files.TypeDir, FileInfo: mode(0o750)},
				{Source: s.Config, Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: mode(0o640)},
				{Destination: StateDir, Type: files.TypeDir, FileInfo: mode(0o750)},
			},
			Scripts: scripts,
			RPM: nfpm.RPM{
				Summary:   "posguard register agent",
				Group:     "System Environment/Daemons",
				BuildHost: "posguard", // not os.Hostname(): the same bytes on every machine
			},
		},
	}
	if format == "rpm" {
		// useradd and groupadd; on Debian they are in the essential passwd.
		info.Depends = []string{"shadow-utils"}
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("build %s package: %w", format, err)
	}
	name := pkgr.ConventionalFileName(info)
	if err := pkgr.Package(info, w); err != nil {
		return "", fmt.Errorf("build %s package: %w", format, err)
	}
	return name, nil
}

// Version is a Go module version split as nfpm wants it.
type Version struct {
	Version    string // 1.2.0
	Prerelease string // "rc.1", "0.20261129221012.0123456789ab"; sorts before Version
	Metadata   string // "dirty"
}

var (
	semverCore = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	// dpkg and rpm allow these in a version; "-" would start the package
	// revision, so it is turned into "." first.
	prereleaseChars = regexp.MustCompile(`^[0-9A-Za-z.]+$`)
)

// ParseVersion splits a Go module version (v1.2.0, v1.2.1-rc.1, the
// pseudo-version v0.0.0-20261129221012-0123456789ab, +dirty) into the
// parts of a package version. A build the go command could not stamp,
// "(devel)", has no version to give a package.
func ParseVersion(v string) (Version, error) {
	if v == "" || v == "(devel)" {
		return Version{}, fmt.Errorf("version %q: the binary has no module version (built with -buildvcs=false, or outside a VCS checkout)", v)
	}
	rest, ok := strings.CutPrefix(v, "v")
	if !ok {
		return Version{}, fmt.Errorf("version %q: does not start with v", v)
	}
	var out Version
	rest, out.Metadata, _ = strings.Cut(rest, "+")
	rest, pre, _ := strings.Cut(rest, "-")
	if !semverCore.MatchString(rest) {
		return Version{}, fmt.Errorf("version %q: %q is not MAJOR.MINOR.PATCH", v, rest)
	}
	out.Version = rest
	if pre != "" {
		out.Prerelease = strings.ReplaceAll(pre, "-", ".")
		if !prereleaseChars.MatchString(out.Prerelease) {
			return Version{}, fmt.Errorf("version %q: pre-release %q has characters other than letters, digits, '.' and '-'", v, pre)
		}
	}
	return out, nil
}

// unitEdits turn scripts/posguard-agent.service, the unit of a hand
// install of the all-in-one posguard (scripts/install-agent.sh), into the
// package's: the agent-only binary where the package puts it.
var unitEdits = []struct{ old, new string }{
	{"# Installed by scripts/install-agent.sh as /etc/systemd/system/posguard-agent.service.",
		"# Installed by the posguard-agent package as " + UnitPath + "."},
	{"/usr/local/bin/posguard agent ", BinaryPath + " agent "},
}

// Unit makes the package's systemd unit from the hand-install unit
// (scripts/posguard-agent.service); it fails when a line it rewrites is
// not there, rather than ship a unit that starts the wrong binary.
func Unit(src []byte) ([]byte, error) {
	out := src
	for _, e := range unitEdits {
		if !bytes.Contains(out, []byte(e.old)) {
			return nil, fmt.Errorf("systemd unit: no %q to rewrite", e.old)
		}
		out = bytes.ReplaceAll(out, []byte(e.old), []byte(e.new))
	}
	if bytes.Contains(out, []byte("/usr/local/")) {
		return nil, errors.New("systemd unit: still names /usr/local/ after rewriting")
	}
	return out, nil
}
