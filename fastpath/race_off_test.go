//go:build !race

package fastpath

// raceDetector says the tests run under -race (race_on_test.go).
const raceDetector = false

// raceSlowdown is how many times longer a clocked run may take (race_on_test.go).
const raceSlowdown = 1
