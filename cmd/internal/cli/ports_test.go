package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/posguard/posguard/firmware-bridge/serialport"
)

func TestPortsCLI(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), Stdio{Out: &out, Err: &errOut}, Program{Name: "posguard", Commands: []Command{Ports}}, []string{"ports"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	ports, err := serialport.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) == 0 {
		if out.String() != "no serial ports found\n" {
			t.Errorf("output %q", out.String())
		}
		return
	}
	for _, p := range ports {
		if !strings.Contains(out.String(), p.Name) {
			t.Errorf("port %s not listed in %q", p.Name, out.String())
		}
	}
}

// TestWritePorts covers the USB line of `posguard ports`, which this
// machine (no USB scanner attached) cannot show for real.
func TestWritePorts(t *testing.T) {
	var b strings.Builder
	writePorts(&b, []serialport.PortInfo{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyACM0", USB: true, VID: "05e0", PID: "1900", Serial: "S/N:1234", Product: "Symbol Bar Code Scanner"},
	})
	want := "/dev/ttyS0\n/dev/ttyACM0\tusb 05e0:1900\tserial \"S/N:1234\"\tSymbol Bar Code Scanner\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	writePorts(&b, nil)
	if b.String() != "no serial ports found\n" {
		t.Fatalf("no ports: %q", b.String())
	}
}
