//go:build !race

package fastpath

// raceDetector says the tests run under -race (race_on_test.go).
const raceDetector = false
