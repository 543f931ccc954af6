package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/posguard/posguard/cmd/internal/service"
)

// Service manages the agent's Windows service.
var Service = Command{"service", "install, uninstall, start, stop or reload the Windows service", runService}

func runService(ctx context.Context, std Stdio, args []string) error {
	var verbs strings.Builder
	for _, v := range service.Verbs {
		fmt.Fprintf(&verbs, "  %-10s %s\n", v.Verb, v.About)
	}
	fs := NewFlags(std, "service", "install|uninstall|start|stop|reload", `
Manage the Windows service that runs the agent (as Administrator):

`+verbs.String()+`
The service is named `+service.Name+`; it runs '`+std.Prog()+` agent --config FILE'
as LocalSystem, logs to the event log (source `+service.Name+`) and keeps its
configuration and state in %ProgramData%\posguard, which install creates
readable by SYSTEM and the Administrators only. On Linux the systemd unit
(scripts/posguard-agent.service) does this job.`)
	cfg := fs.String("config", "", "install: the configuration file the service runs with (default "+service.DefaultConfig("windows", os.Getenv)+")")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	r, err := service.ParseArgs(fs.Args(), *cfg, service.DefaultConfig(runtime.GOOS, os.Getenv), filepath.Abs)
	if err != nil {
		return Usagef("%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable: %w", err)
	}
	return service.Do(r, exe, std.Out)
}
