package cpu

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Pinning a thread that is already pinned elsewhere moves it: the CPUs to
// choose from are the process's, not the thread's (a thread made by a
// pinned one inherits its single CPU, and worker 1 landed on worker 0's).
func TestPinFromPinnedThread(t *testing.T) {
	if allowed.Count() < 2 {
		t.Skip("needs two CPUs")
	}
	done := make(chan error)
	go func() {
		defer runtime.UnlockOSThread()
		for _, c := range []int{0, 1, 0} {
			if err := Pin(c); err != nil {
				done <- err
				return
			}
			var got unix.CPUSet
			if err := unix.SchedGetaffinity(0, &got); err != nil {
				done <- err
				return
			}
			var want unix.CPUSet
			for i, seen := 0, 0; i < 1024; i++ {
				if allowed.IsSet(i) {
					if seen == c {
						want.Set(i)
						break
					}
					seen++
				}
			}
			if got != want {
				t.Errorf("Pin(%d): the thread runs on %v CPUs, want the %d-th allowed one alone", c, got.Count(), c)
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
