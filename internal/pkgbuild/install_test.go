package pkgbuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/testenv"
)

// agentCmd is the package of the binary the packages carry.
const agentCmd = "../../cmd/posguard-agent"

// testVersion marks the packages of this test, so that a run killed half
// way can be told from a real install and purged by the next run.
const testVersion = "pkgtest"

// testEpoch is the SOURCE_DATE_EPOCH stamped into the test's binary the
// way scripts/release.sh stamps it, so the installed binary must report it
// as its build date.
const testEpoch = 1795996800

// buildAgent builds the agent binary for this machine.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "posguard-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags",
		fmt.Sprintf("-X github.com/posguard/posguard/internal/version.sourceDateEpoch=%d", testEpoch), "-o", bin, agentCmd)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", agentCmd, err, out)
	}
	return bin
}

// writePackage builds one package of bin into dir and returns its path.
func writePackage(t *testing.T, format string, s Spec, dir string) string {
	t.Helper()
	var b bytes.Buffer
	name, err := Build(format, s, &b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a command and returns its standard output, failing t on error.
// dpkg waits its turn when another package manager holds its lock.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Stdin = nil // dpkg must never wait for an answer
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		err := cmd.Run()
		if err == nil {
			return stdout.String()
		}
		if strings.Contains(stderr.String(), "lock") && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
}

// needRoot skips, or fails under POSGUARD_INTEGRATION=1, unless this test
// may install packages here: root, with the tool.
func needRoot(t *testing.T, tool string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Need(t, "root (to install packages)", errors.New("not running as root"))
	}
	_, err := exec.LookPath(tool)
	testenv.Need(t, tool, err)
}

// owner checks path's type, mode and owners.
func checkOwner(t *testing.T, path string, dir bool, mode fs.FileMode, owner, group string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if fi.IsDir() != dir {
		t.Errorf("%s: directory %v, want %v", path, fi.IsDir(), dir)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, err := user.LookupId(strconv.Itoa(int(st.Uid)))
	gotOwner := fmt.Sprint(st.Uid)
	if err == nil {
		gotOwner = u.Username
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	gotGroup := fmt.Sprint(st.Gid)
	if err == nil {
		gotGroup = g.Name
	}
	if gotOwner != owner || gotGroup != group {
		t.Errorf("%s: owned by %s:%s, want %s:%s", path, gotOwner, gotGroup, owner, group)
	}
}

func checkGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after removal (%v)", p, err)
		}
	}
}

// checkInstalled checks what every installed version must have.
func checkInstalled(t *testing.T, unit []byte, wantVersion string) {
	t.Helper()
	if got := strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Status} ${Version}", Name)); got != "install ok installed "+wantVersion {
		t.Errorf("dpkg-query: %q, want %q", got, "install ok installed "+wantVersion)
	}
	checkOwner(t, BinaryPath, false, 0o755, "root", "root")
	built := "\nbuilt: " + time.Unix(testEpoch, 0).UTC().Format(time.RFC3339) + "\n"
	if out := run(t, BinaryPath, "version"); !strings.HasPrefix(out, "posguard-agent ") || !strings.Contains(out, built) {
		t.Errorf("%s version printed %q, want the name and %q", BinaryPath, out, built)
	}
	checkOwner(t, UnitPath, false, 0o644, "root", "root")
	if got, err := os.ReadFile(UnitPath); err != nil || !bytes.Equal(got, unit) {
		t.Errorf("installed unit differs from the packaged one (%v):\n%s", err, got)
	}
	checkOwner(t, ConfigDir, true, 0o750, "root", "posguard")
	checkOwner(t, ConfigPath, false, 0o640, "root", "posguard")
	checkOwner(t, StateDir, true, 0o750, "posguard", "posguard")
	if conf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", Name); !strings.Contains(conf, ConfigPath+" ") {
		t.Errorf("%s is not a conffile (kept on upgrade); conffiles:%s", ConfigPath, conf)
	}

	// The system user: no login, home the state directory, serial ports.
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "posguard")), ":")
	if len(pw) != 7 {
		t.Fatalf("getent passwd posguard: %q", pw)
	}
	uid, _ := strconv.Atoi(pw[2])
	if uid <= 0 || uid >= 1000 || pw[5] != StateDir || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("posguard user %q: want a system uid (1..999), home %s, shell /usr/sbin/nologin", pw, StateDir)
	}
	if groups := strings.Fields(run(t, "id", "-nG", "posguard")); !contains(groups, "posguard") || !contains(groups, "dialout") {
		t.Errorf("posguard is in groups %q, want posguard and dialout", groups)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestDebInstallUpgradePurge installs the .deb with dpkg on this machine,
// upgrades it to a second version over a configuration the register
// changed, removes it and purges it. It changes the machine (a posguard
// user, files under /usr, /etc and /var/lib), so it runs only as root; CI
// runs it (.ci/run).
func TestDebInstallUpgradePurge(t *testing.T) {
	needRoot(t, "dpkg")
	status, _ := exec.Command("dpkg-query", "-W", "-f=${Status} ${Version}", Name).Output()
	if st := string(status); st != "" && !strings.HasPrefix(st, "unknown ok not-installed") {
		if !strings.Contains(st, testVersion) {
			t.Skipf("a %s package not of this test is on this machine (%s): not touching it", Name, st)
		}
		run(t, "dpkg", "--purge", Name) // left by a run of this test that was killed
	} else if _, err := os.Stat(ConfigDir); err == nil {
		t.Skipf("%s exists without the package (a hand install, scripts/install-agent.sh?): not touching it", ConfigDir)
	}
	_, userErr := user.Lookup("posguard")
	t.Cleanup(func() {
		exec.Command("dpkg", "--purge", Name).Run()
		if userErr != nil { // the test made the user: take it away again
			exec.Command("userdel", "posguard").Run()
			exec.Command("groupdel", "posguard").Run()
		}
	})

	dir := t.TempDir()
	spec := testSpec(t, buildAgent(t, dir))
	spec.Version = "v0.0.1-" + testVersion + ".1"
	v1 := writePackage(t, "deb", spec, dir)
	spec.Version = "v0.0.1-" + testVersion + ".2"
	spec.MTime = spec.MTime.Add(24 * time.Hour)
	// The next version documents a new key in its example configuration.
	example, err := os.ReadFile(spec.Config)
	if err != nil {
		t.Fatal(err)
	}
	newExample := append(append([]byte{}, example...), "# a key the next version documents\n"...)
	spec.Config = filepath.Join(dir, "agent.example.yaml")
	if err := os.WriteFile(spec.Config, newExample, 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := writePackage(t, "deb", spec, dir)

	run(t, "dpkg", "--install", v1)
	checkInstalled(t, spec.Unit, "0.0.1~pkgtest.1-1")
	if got, _ := os.ReadFile(ConfigPath); !bytes.Equal(got, example) {
		t.Errorf("%s is not the example configuration", ConfigPath)
	}

	// The register's own configuration and state.
	mine := append(append([]byte{}, example...), "# edited on this register\n"...)
	if err := os.WriteFile(ConfigPath, mine, 0o640); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(StateDir, "state.db")
	if err := os.WriteFile(state, []byte("the register's decisions"), 0o600); err != nil {
		t.Fatal(err)
	}

	// An unattended upgrade keeps the changed file (--force-confold, what
	// apt-get -o Dpkg::Options::=--force-confold passes) and puts the new
	// example beside it.
	run(t, "dpkg", "--force-confold", "--install", v2)
	checkInstalled(t, spec.Unit, "0.0.1~pkgtest.2-1")
	if got, _ := os.ReadFile(ConfigPath); !bytes.Equal(got, mine) {
		t.Errorf("upgrade replaced the register's %s:\n%s", ConfigPath, got)
	}
	if got, err := os.ReadFile(ConfigPath + ".dpkg-dist"); err != nil || !bytes.Equal(got, newExample) {
		t.Errorf("the new example is not beside it as %s.dpkg-dist: %v", ConfigPath, err)
	}
	if got, err := os.ReadFile(state); err != nil || string(got) != "the register's decisions" {
		t.Errorf("upgrade lost the state file: %q, %v", got, err)
	}

	// Removal takes the program and keeps configuration and state.
	run(t, "dpkg", "--remove", Name)
	checkGone(t, BinaryPath, UnitPath)
	if got, _ := os.ReadFile(ConfigPath); !bytes.Equal(got, mine) {
		t.Errorf("removal did not keep %s", ConfigPath)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("removal did not keep the state: %v", err)
	}
	if got := run(t, "dpkg-query", "-W", "-f=${Status}", Name); got != "deinstall ok config-files" {
		t.Errorf("after removal dpkg-query says %q, want %q", got, "deinstall ok config-files")
	}

	// Purge takes everything but the user.
	run(t, "dpkg", "--purge", Name)
	checkGone(t, ConfigDir, StateDir, "/usr/share/doc/"+Name)
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", Name).CombinedOutput(); err == nil && len(out) > 0 && !strings.HasPrefix(string(out), "unknown ok not-installed") {
		t.Errorf("after purge dpkg-query says %q", out)
	}
	if _, err := user.Lookup("posguard"); err != nil {
		t.Errorf("purge removed the posguard user, which may still own files: %v", err)
	}
}

// TestRPMWellFormed reads the .rpm with rpm itself (Debian's rpm
// package): its header, digests, files with owners and modes, its
// configuration file and scripts. This machine is Debian, so the rpm is
// not installed.
func TestRPMWellFormed(t *testing.T) {
	_, err := exec.LookPath("rpm")
	testenv.Need(t, "rpm (apt-get install rpm)", err)
	dir := t.TempDir()
	spec := testSpec(t, buildAgent(t, dir))
	spec.Version = "v1.2.1-rc.1"
	spec.Arch = "arm64" // an rpm for another machine reads the same
	pkg := writePackage(t, "rpm", spec, dir)
	rpm := func(args ...string) string {
		return run(t, "rpm", append([]string{"--dbpath", filepath.Join(dir, "rpmdb")}, args...)...)
	}

	if out := rpm("--checksig", "--nosignature", pkg); !strings.Contains(out, "digests OK") {
		t.Errorf("rpm --checksig: %s", out)
	}
	if got, want := rpm("-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}", pkg), "posguard-agent 1.2.1~rc.1 1 aarch64 Apache-2.0"; got != want {
		t.Errorf("rpm header %q, want %q", got, want)
	}
	files := rpm("-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]", pkg)
	for _, want := range []string{
		"-rwxr-xr-x root root " + BinaryPath,
		"-rw-r--r-- root root " + UnitPath,
		"drwxr-x--- root root " + ConfigDir,
		"-rw-r----- root root " + ConfigPath,
		"drwxr-x--- root root " + StateDir,
	} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("rpm file list lacks %q:\n%s", want, files)
		}
	}
	if got := strings.TrimSpace(rpm("-qpc", pkg)); got != ConfigPath {
		t.Errorf("rpm configuration files %q, want %s", got, ConfigPath)
	}
	if flags := rpm("-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", pkg); !strings.Contains(flags, "cn "+ConfigPath) {
		t.Errorf("%s is not %%config(noreplace):\n%s", ConfigPath, flags)
	}
	scripts := rpm("-qp", "--scripts", pkg)
	for _, want := range []string{"postinstall scriptlet", "useradd --system", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm scripts lack %q:\n%s", want, scripts)
		}
	}
	if req := rpm("-qpR", pkg); !strings.Contains(req, "shadow-utils") {
		t.Errorf("rpm requires:\n%s\nwant shadow-utils (useradd)", req)
	}
}
