// Package cpu pins the calling OS thread to a CPU, for per-core workers.
package cpu

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// allowed is the CPUs the process may run on, taken when it starts: a
// thread's own affinity is no guide once a pinned thread has made others
// (Linux threads inherit the affinity of the thread that made them), and
// Pin(1) on such a thread would find one CPU and pin to it again.
var allowed, allowedErr = func() (unix.CPUSet, error) {
	var set unix.CPUSet
	err := unix.SchedGetaffinity(0, &set)
	return set, err
}()

// Pin locks the calling goroutine to its OS thread and restricts the thread
// to cpu (modulo the CPUs the process was allowed at start). Errors are
// returned, not fatal: a worker runs unpinned where affinity is not
// allowed.
func Pin(cpu int) error {
	runtime.LockOSThread()
	if allowedErr != nil {
		return allowedErr
	}
	n := allowed.Count()
	if n == 0 {
		return nil
	}
	// The cpu-th allowed CPU.
	want := cpu % n
	for i, seen := 0, 0; i < 1024; i++ {
		if allowed.IsSet(i) {
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
