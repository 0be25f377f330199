//go:build race

package fastpath

// raceDetector says the tests run under -race, where the engine and the
// test link are several times slower: a test that holds the engine to a
// wall-clock rate asks for one it can keep.
const raceDetector = true

// raceSlowdown is how many times longer a clocked run may take.
const raceSlowdown = 3
