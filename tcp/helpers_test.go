package tcp

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	cliMAC = [6]byte{0x02, 0, 0, 0, 0, 1}
	srvMAC = [6]byte{0x02, 0, 0, 0, 0, 2}
	cliIP  = [4]byte{198, 18, 0, 1}
	srvIP  = [4]byte{198, 18, 0, 2}
)

func testPath() *Path {
	return &Path{SrcMAC: cliMAC, DstMAC: srvMAC, Src: cliIP, Dst: srvIP, SrcPort: 40000, DstPort: 8080}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// decode checks a frame with gopacket, an independent decoder: it must parse
// as Ethernet/IPv4/TCP and both checksums must verify (S8).
func decode(t *testing.T, frame []byte) (*layers.IPv4, *layers.TCP) {
	t.Helper()
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pk.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tc, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tc == nil {
		t.Fatalf("gopacket found no IPv4/TCP in % x", frame)
	}
	// Recompute both checksums with gopacket and compare with the frame's.
	ipc, tcc := *ip, *tc
	buf := gopacket.NewSerializeBuffer()
	_ = tcc.SetNetworkLayerForChecksum(&ipc)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: false},
		&ipc, &tcc, gopacket.Payload(tc.Payload)); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	out := buf.Bytes()
	if got, want := ip.Checksum, uint16(out[10])<<8|uint16(out[11]); got != want {
		t.Errorf("IPv4 checksum %#04x, gopacket computes %#04x", got, want)
	}
	off := int(ip.IHL) * 4
	if got, want := tc.Checksum, uint16(out[off+16])<<8|uint16(out[off+17]); got != want {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", got, want)
	}
	return ip, tc
}

// tshark decodes frames with Wireshark's dissectors and returns one line
// of fields per frame. Without tshark the test is skipped, visibly, with the
// package to install (make deps installs it); in CI it fails.
func tshark(t *testing.T, frames [][]byte, fields ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed: make deps installs it (Debian package tshark)")
		}
		t.Skip("needs tshark for the Wireshark cross-check (apt-get install tshark, or make deps)")
	}
	p := filepath.Join(t.TempDir(), "f.pcap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		_ = w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	f.Close()
	args := []string{"-r", p, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=,"}
	for _, fl := range fields {
		args = append(args, "-e", fl)
	}
	cmd := exec.Command("tshark", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func eq(t *testing.T, rule string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got % x\nwant % x", rule, got, want)
	}
}
