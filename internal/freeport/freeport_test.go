package freeport

import (
	"net"
	"runtime"
	"strings"
	"testing"
)

func TestPortsOutsideTheEphemeralRange(t *testing.T) {
	lo, hi, ok := EphemeralRange()
	if !ok && runtime.GOOS == "linux" {
		t.Fatal("the ephemeral port range is unreadable or leaves no room below it")
	}
	for range 100 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if ok && (p < Min || (p >= lo && p <= hi)) {
			t.Fatalf("Port = %d, inside the ephemeral range %d-%d or below %d", p, lo, hi, Min)
		}
	}
}

func TestAddrIsFreeLoopback(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Addr %s is not free: %v", addr, err)
	}
	ln.Close()
}
