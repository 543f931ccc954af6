//go:build race

package hq

// raceDetector: the race detector slows HQ and the broker tenfold, so
// timing-bound tests use smaller loads under it.
const raceDetector = true
