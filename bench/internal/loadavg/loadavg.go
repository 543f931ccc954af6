// Package loadavg reads the machine's load average, which the benchmark
// commands print beside their figures: on a shared machine it says how far
// to trust them.
package loadavg

import (
	"os"
	"strings"
)

// String is the 1, 5 and 15 minute load averages ("0.52 0.61 0.70"), or
// "unknown" where /proc/loadavg cannot be read.
func String() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
