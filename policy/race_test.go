//go:build race

package policy

// raceEnabled: under the race detector sync.Pool drops a share of what is
// put back, so pooled evaluations are rebuilt and allocation counts lie.
const raceEnabled = true
