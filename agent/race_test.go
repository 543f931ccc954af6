//go:build race

package agent_test

// raceDetector: the race detector slows the agent, HQ and the brokers
// tenfold, so deadlines stretch under it.
const raceDetector = true
