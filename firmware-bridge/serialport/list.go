package serialport

import (
	"fmt"

	"go.bug.st/serial/enumerator"
)

// PortInfo is one port the OS knows.
type PortInfo struct {
	Name    string
	USB     bool
	VID     string
	PID     string
	Serial  string
	Product string
}

// List returns the serial ports with USB details where the OS has them.
func List() ([]PortInfo, error) {
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	out := make([]PortInfo, 0, len(ports))
	for _, p := range ports {
		out = append(out, PortInfo{Name: p.Name, USB: p.IsUSB, VID: p.VID, PID: p.PID, Serial: p.SerialNumber, Product: p.Product})
	}
	return out, nil
}
