package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// checkCaps fails early, naming what is missing, when the process lacks the
// capabilities a run needs: CAP_NET_ADMIN (XDP attach, sysctls), CAP_BPF or
// CAP_SYS_ADMIN (BPF programs and maps), CAP_NET_RAW (AF_XDP sockets),
// CAP_IPC_LOCK (UMEM), and CAP_SYS_ADMIN with --netns (setns).
func checkCaps(netns bool) error {
	if os.Geteuid() == 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(uint(c)%32)) != 0 }
	var missing []string
	for _, c := range []struct {
		n    int
		name string
	}{{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {unix.CAP_NET_RAW, "CAP_NET_RAW"}, {unix.CAP_IPC_LOCK, "CAP_IPC_LOCK"}} {
		if !has(c.n) {
			missing = append(missing, c.name)
		}
	}
	if !has(unix.CAP_BPF) && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_BPF")
	}
	if netns && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_SYS_ADMIN (for --netns)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("insufficient privileges: missing %s; run as root or grant them (setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep xdpconnect)", strings.Join(missing, ", "))
	}
	return nil
}
