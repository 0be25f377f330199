package xdpconnect

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// SetcapCaps are the file capabilities (`setcap SetcapCaps BINARY`) that
// let a user without root run xdpconnect.
const SetcapCaps = "cap_net_admin,cap_net_raw,cap_bpf,cap_perfmon,cap_ipc_lock+ep"

// CheckCapabilities fails early, naming what is missing, when the process lacks the
// capabilities a run needs: CAP_NET_ADMIN (XDP attach, sysctls), CAP_BPF or
// CAP_SYS_ADMIN (BPF programs and maps), CAP_NET_RAW (AF_XDP sockets),
// CAP_IPC_LOCK (UMEM), CAP_PERFMON (the verifier, without CAP_SYS_ADMIN),
// and CAP_SYS_ADMIN with --netns (setns). Root is
// checked too: a container or a bounding set can take capabilities from
// uid 0, and the kernel's errors (ENOBUFS for the UMEM) do not name them.
func CheckCapabilities(netns bool) error {
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
	// The verifier refuses the program's packet-pointer arithmetic to a
	// loader without CAP_PERFMON ("pointer arithmetic prohibited for !root").
	if !has(unix.CAP_PERFMON) && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_PERFMON")
	}
	if netns && !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_SYS_ADMIN (to enter another network namespace)")
	}
	if len(missing) > 0 {
		who := "grant them to the binary: setcap " + SetcapCaps + " $(command -v xdpconnect)"
		if os.Geteuid() == 0 {
			who = "this root process has a reduced capability set (container or bounding set): run it with these capabilities"
		}
		return fmt.Errorf("insufficient privileges: missing %s; %s", strings.Join(missing, ", "), who)
	}
	return nil
}
