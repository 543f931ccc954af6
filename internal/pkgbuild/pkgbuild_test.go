package pkgbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		err  string
	}{
		{in: "v1.2.0", want: Version{Version: "1.2.0"}},
		{in: "v1.2.1-rc.1", want: Version{Version: "1.2.1", Prerelease: "rc.1"}},
		{in: "v0.0.0-20261129221012-0123456789ab", want: Version{Version: "0.0.0", Prerelease: "20261129221012.0123456789ab"}},
		{in: "v1.2.1-0.20261129221012-0123456789ab+dirty", want: Version{Version: "1.2.1", Prerelease: "0.20261129221012.0123456789ab", Metadata: "dirty"}},
		{in: "(devel)", err: "the binary has no module version"},
		{in: "", err: "the binary has no module version"},
		{in: "1.2.0", err: "does not start with v"},
		{in: "v1.2", err: `"1.2" is not MAJOR.MINOR.PATCH`},
		{in: "v1.2.0-rc_1", err: `pre-release "rc_1" has characters other than`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseVersion(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// packagedUnit is the hand-install unit of scripts/ and the package's.
func packagedUnit(t *testing.T) (src, unit []byte) {
	t.Helper()
	src, err := os.ReadFile("../../scripts/posguard-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if unit, err = Unit(src); err != nil {
		t.Fatal(err)
	}
	return src, unit
}

func TestUnit(t *testing.T) {
	src, unit := packagedUnit(t)
	for _, line := range []string{
		"ExecStartPre=/usr/bin/posguard-agent agent --check --config /etc/posguard/agent.yaml\n",
		"ExecStart=/usr/bin/posguard-agent agent --config /etc/posguard/agent.yaml\n",
		"User=posguard\n",
		"StateDirectory=posguard\n",
		"StateDirectoryMode=0750\n", // systemd sets it at each start: it must agree with the package
	} {
		if !bytes.Contains(unit, []byte(line)) {
			t.Errorf("packaged unit lacks %q:\n%s", line, unit)
		}
	}
	// A hand unit that no longer has the lines the package rewrites must
	// stop the build, not ship a unit that runs /usr/local/bin/posguard.
	moved := bytes.ReplaceAll(src, []byte("/usr/local/bin/posguard agent"), []byte("/opt/posguard/bin/posguard agent"))
	if _, err := Unit(moved); err == nil || !strings.Contains(err.Error(), `no "/usr/local/bin/posguard agent "`) {
		t.Errorf("Unit(unit without /usr/local/bin/posguard) error = %v, want one naming the missing line", err)
	}
}

// testSpec is a package of the given file as the binary; Build does not
// run the binary, so any file shows what the packaging step does.
func testSpec(t *testing.T, binary string) Spec {
	t.Helper()
	_, unit := packagedUnit(t)
	return Spec{Binary: binary, Unit: unit, Config: "../../scripts/agent.example.yaml", License: "../../LICENSE",
		Version: "v1.2.0", Arch: "amd64", MTime: time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)}
}

func TestBuildIsReproducible(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "posguard-agent")
	data := []byte("\x7fELF not really, but bytes to package")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The same binary elsewhere: no path may get into a package.
	other := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(other, data, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, bin)
	targets := []struct {
		format, arch, name string
	}{
		{"deb", "amd64", "posguard-agent_1.2.0-1_amd64.deb"},
		{"rpm", "amd64", "posguard-agent-1.2.0-1.x86_64.rpm"},
		{"deb", "arm64", "posguard-agent_1.2.0-1_arm64.deb"},
		{"rpm", "arm64", "posguard-agent-1.2.0-1.aarch64.rpm"},
		{"deb", "arm7", "posguard-agent_1.2.0-1_armhf.deb"},
		{"rpm", "386", "posguard-agent-1.2.0-1.i386.rpm"},
	}
	build := func(format string, s Spec) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := Build(format, s, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	first := make([][]byte, len(targets))
	for i, tt := range targets {
		s := spec
		s.Arch = tt.arch
		var b bytes.Buffer
		name, err := Build(tt.format, s, &b)
		if err != nil {
			t.Fatalf("%s/%s: %v", tt.format, tt.arch, err)
		}
		if name != tt.name {
			t.Errorf("%s/%s: file name %q, want %q", tt.format, tt.arch, name, tt.name)
		}
		first[i] = b.Bytes()
	}
	// A second later the clock reads otherwise: it must not get in either.
	time.Sleep(1100 * time.Millisecond)
	for i, tt := range targets {
		s := spec
		s.Arch = tt.arch
		s.Binary = other
		if again := build(tt.format, s); !bytes.Equal(first[i], again) {
			t.Errorf("%s/%s: two builds of the same inputs differ (%d and %d bytes)", tt.format, tt.arch, len(first[i]), len(again))
		}
		// ... while the inputs do change it.
		s.MTime = s.MTime.Add(time.Hour)
		if bytes.Equal(first[i], build(tt.format, s)) {
			t.Errorf("%s/%s: a package of other file times has the same bytes", tt.format, tt.arch)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	spec := testSpec(t, "../../LICENSE")
	tests := []struct {
		name   string
		format string
		edit   func(*Spec)
		err    string
	}{
		{"no file time", "deb", func(s *Spec) { s.MTime = time.Time{} }, "no file time"},
		{"devel build", "rpm", func(s *Spec) { s.Version = "(devel)" }, "no module version"},
		{"unknown format", "msi", func(s *Spec) {}, "no packager registered for the format msi"},
		{"missing binary", "deb", func(s *Spec) { s.Binary = "no/such/binary" }, "no/such/binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec
			tt.edit(&s)
			_, err := Build(tt.format, s, new(bytes.Buffer))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Build error = %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestMTime(t *testing.T) {
	commit := time.Date(2026, 11, 29, 18, 0, 0, 0, time.FixedZone("JST", 9*3600))
	tests := []struct {
		epoch  string
		commit time.Time
		want   time.Time
		err    string
	}{
		{"", commit, commit.UTC(), ""},
		{"1700000000", commit, time.Unix(1700000000, 0).UTC(), ""},
		{"1700000000", time.Time{}, time.Unix(1700000000, 0).UTC(), ""},
		{"", time.Time{}, time.Time{}, "no VCS commit time"},
		{"soon", commit, time.Time{}, `SOURCE_DATE_EPOCH "soon": not a count of seconds`},
	}
	for _, tt := range tests {
		got, err := MTime(tt.epoch, Binary{Time: tt.commit})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("MTime(%q, %v) = %v, %v; want error containing %q", tt.epoch, tt.commit, got, err, tt.err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("MTime(%q, %v) = %v, %v; want %v", tt.epoch, tt.commit, got, err, tt.want)
		}
	}
}
