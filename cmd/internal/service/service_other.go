//go:build !windows

package service

import (
	"errors"
	"io"
)

// errNotWindows is what the service commands say off Windows.
var errNotWindows = errors.New("Windows services exist only on Windows; on Linux the systemd unit runs the agent (scripts/posguard-agent.service)")

// IsService is false: only Windows has a service control manager.
func IsService() (bool, error) { return false, nil }

// Run fails: only Windows has a service control manager.
func Run(dir string, agent Agent) error { return errNotWindows }

// Do fails: only Windows has a service control manager.
func Do(r Request, exe string, out io.Writer) error { return errNotWindows }
