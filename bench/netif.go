package bench

import "net"

// netIfindex is the index of interface name in the calling thread's namespace.
func netIfindex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

func netInterface(ifindex int) ([]byte, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	return ifi.HardwareAddr, nil
}
