package bench

import (
	"net"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// The reflector answers a kernel connect() (with the pass program on the
// client veth), so kernel baselines can be measured against it.
func TestReflectorAnswersKernelConnect(t *testing.T) {
	testutil.RequirePrivileges(t)
	b, err := newBed(true, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	err = b.withPass(func() error {
		return lab.Do(b.l.ClientNS, func() error {
			for i := 0; i < 10; i++ {
				c, err := net.DialTimeout("tcp4", b.dst.String(), 2*time.Second)
				if err != nil {
					return err
				}
				c.Close()
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sent, _, _, err := b.refl.Counters()
	if err != nil || sent < 10 {
		t.Fatalf("reflector sent %d SYN-ACKs (%v)", sent, err)
	}
	if b.l.Listener.Accepted() != 0 {
		t.Fatal("the Linux listener answered instead of the reflector")
	}
}
