// Package cpu pins the calling OS thread to a CPU, for per-core workers.
package cpu

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Pin locks the calling goroutine to its OS thread and restricts the thread
// to cpu (modulo the CPUs available). Errors are returned, not fatal: a
// worker runs unpinned where affinity is not allowed.
func Pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return err
	}
	n := set.Count()
	if n == 0 {
		return nil
	}
	// The cpu-th allowed CPU.
	want := cpu % n
	for i, seen := 0, 0; i < 1024; i++ {
		if set.IsSet(i) {
			if seen == want {
				var one unix.CPUSet
				one.Set(i)
				return unix.SchedSetaffinity(0, &one)
			}
			seen++
		}
	}
	return nil
}
