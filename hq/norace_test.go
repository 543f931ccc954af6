//go:build !race

package hq

const raceDetector = false
