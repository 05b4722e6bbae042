// Package freeport picks loopback ports for servers that tests and benchmarks start, outside the
// kernel's ephemeral port range.
//
// A port from that range (what "127.0.0.1:0" gives) can be taken by any outgoing connection of
// any process between the moment it is found free and the bind that uses it. On a CI machine
// running many test binaries at once, a test cluster's node once never became ready, most likely
// for that reason (RELIABILITY.md, section 4, entry 8). A port outside the range is only ever
// taken by an explicit bind.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Min keeps chosen ports above those well-known services and other tools tend to use.
const Min = 10000

// attempts bounds the random draws before Addr falls back to a port from the ephemeral range.
const attempts = 200

// Addr returns a loopback address ("127.0.0.1:port") that was free a moment ago, outside the
// ephemeral range when that range can be read (Linux), else any free port.
func Addr() (string, error) {
	if lo, hi, ok := EphemeralRange(); ok {
		for range attempts {
			port := Min + rand.IntN(lo-Min)
			if hi < 65535 && rand.IntN(2) == 0 {
				port = hi + 1 + rand.IntN(65535-hi)
			}
			if addr, err := listenClose("127.0.0.1:" + strconv.Itoa(port)); err == nil {
				return addr, nil
			}
		}
	}
	addr, err := listenClose("127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("freeport: %w", err)
	}
	return addr, nil
}

// Port returns the port of Addr.
func Port() (int, error) {
	addr, err := Addr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(addr)
	return strconv.Atoi(p)
}

func listenClose(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// EphemeralRange reads the kernel's range of ports for outgoing connections; ok is false when it
// cannot be read or leaves fewer than 1,000 ports between Min and its start.
func EphemeralRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo-Min < 1000 || hi < lo || hi > 65535 {
		return 0, 0, false
	}
	return lo, hi, true
}
