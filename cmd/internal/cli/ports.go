package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/posguard/posguard/firmware-bridge/serialport"
)

// Ports lists the machine's serial ports.
var Ports = Command{"ports", "list serial ports", runPorts}

func runPorts(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "ports", "", "List the serial ports of this machine, with USB vendor/product id and serial number where the OS knows them.")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return Usagef("takes no arguments")
	}
	ports, err := serialport.List()
	if err != nil {
		return err
	}
	writePorts(std.Out, ports)
	return nil
}

// writePorts prints one line a port, with the USB ids where known.
func writePorts(w io.Writer, ports []serialport.PortInfo) {
	if len(ports) == 0 {
		fmt.Fprintln(w, "no serial ports found")
		return
	}
	for _, p := range ports {
		if !p.USB {
			fmt.Fprintf(w, "%s\n", p.Name)
			continue
		}
		fmt.Fprintf(w, "%s\tusb %s:%s\tserial %q\t%s\n", p.Name, p.VID, p.PID, p.Serial, p.Product)
	}
}
