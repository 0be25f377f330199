package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ownerDir records which process created each lab, so that cleaning up
// leftovers never removes a lab that a live test, demo or user is using.
const ownerDir = "/run/xdpconnect/labs"

// owner is a process identity that survives PID reuse: the PID and its
// start time (field 22 of /proc/PID/stat).
type owner struct {
	pid   int
	start string
}

func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f[19], nil
}

func (o owner) alive() bool {
	if o.pid <= 0 {
		return false
	}
	st, err := procStart(o.pid)
	return err == nil && st == o.start
}

// setOwner records pid as the owner of lab name.
func setOwner(name string, pid int) error {
	st, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("lab: owner %d: %w", pid, err)
	}
	if err := os.MkdirAll(ownerDir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return os.WriteFile(filepath.Join(ownerDir, name), []byte(fmt.Sprintf("%d %s\n", pid, st)), 0o644)
}

// SetOwner hands lab l to process pid (for `lab up`, whose listener
// process outlives the command that created the lab).
func (l *Lab) SetOwner(pid int) error { return setOwner(l.Name, pid) }

func readOwner(name string) (owner, bool) {
	b, err := os.ReadFile(filepath.Join(ownerDir, name))
	if err != nil {
		return owner{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return owner{}, false
	}
	pid, err := strconv.Atoi(f[0])
	return owner{pid: pid, start: f[1]}, err == nil
}

func removeOwner(name string) error {
	if err := os.Remove(filepath.Join(ownerDir, name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Owned reports whether a live process owns lab name, and its PID.
func Owned(name string) (int, bool) {
	o, ok := readOwner(name)
	if !ok || !o.alive() {
		return 0, false
	}
	return o.pid, true
}

// DownStale removes the labs whose owner is gone: leftovers of crashed
// tests, demos and killed runs (and labs without an owner record, which
// only a crash between creating the namespaces and recording the owner
// leaves). Labs of live processes, this user's or another's, are kept.
// It returns the namespaces removed.
func DownStale() ([]string, error) {
	nss, err := listNS(Prefix)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ns := range nss {
		name := labName(ns)
		if _, live := Owned(name); live {
			continue
		}
		if err := deleteNS(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns)
	}
	// Owner records whose lab is gone entirely.
	ents, _ := os.ReadDir(ownerDir)
	for _, e := range ents {
		if _, live := Owned(e.Name()); !live {
			if n, _ := listNS(Prefix + e.Name() + "-"); len(n) == 0 {
				_ = removeOwner(e.Name())
			}
		}
	}
	return removed, errors.Join(errs...)
}

// labName is the lab a namespace belongs to: xdc-NAME-cli -> NAME.
func labName(ns string) string {
	s := strings.TrimPrefix(ns, Prefix)
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		return s[:i]
	}
	return s
}
