package tcpproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// hangGuard bounds every read and write of a test, so that a broken proxy fails it rather than
// hanging it; no assertion depends on it.
const hangGuard = time.Minute

// echoServer accepts connections and sends back whatever each one sends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	return c
}

// connected returns a proxy and a connection through it that has carried bytes both ways.
func connected(t *testing.T) (*Proxy, net.Conn) {
	t.Helper()
	p := newProxy(t)
	c := dial(t, p)
	requireEcho(t, c, "before")
	return p, c
}

// roundTrip sends msg through c and returns what comes back, or the error of the exchange.
func roundTrip(c net.Conn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func requireEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if got, err := roundTrip(c, msg); err != nil || got != msg {
		t.Fatalf("through the proxy: got %q, %v; want %q", got, err, msg)
	}
}

// requireCut fails unless c was closed by the proxy: a read ends at once instead of at the
// hang guard.
func requireCut(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := roundTrip(c, "x")
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection the proxy cut: %v, want it closed", err)
	}
}

func TestForwards(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	a, b := dial(t, p), dial(t, p)
	requireEcho(t, a, "hello")
	requireEcho(t, b, "world")
	requireEcho(t, a, string(make([]byte, 100<<10))) // more than one read buffer
}

func TestPauseHoldsBytesUntilResume(t *testing.T) {
	t.Parallel()
	p, c := connected(t)
	p.Pause()
	p.Pause() // a second Pause changes nothing
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back while paused. A short wait can only miss a broken pause, never fail a
	// working one.
	if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 4)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read while paused: %d bytes, %v; want nothing", n, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	p.Resume()
	p.Resume()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after Resume: %q, %v; want what waited", buf, err)
	}
	requireEcho(t, c, "after")
}

func TestCutClosesOpenConnectionsAndAcceptsNewOnes(t *testing.T) {
	t.Parallel()
	p, c := connected(t)
	p.Cut()
	requireCut(t, c)
	requireEcho(t, dial(t, p), "after")
}

func TestDownRefusesUntilUpOnTheSameAddress(t *testing.T) {
	t.Parallel()
	p, c := connected(t)
	addr := p.Addr()
	p.Down()
	p.Down()
	requireCut(t, c)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a connection to a proxy that is down was accepted")
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	if err := p.Up(); err != nil {
		t.Fatalf("Up while up: %v", err)
	}
	if p.Addr() != addr {
		t.Fatalf("address after Up %s, before Down %s", p.Addr(), addr)
	}
	requireEcho(t, dial(t, p), "after")
}

func TestCloseIsForGood(t *testing.T) {
	t.Parallel()
	p, c := connected(t)
	p.Pause()
	p.Close()
	requireCut(t, c)
	if err := p.Up(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Up after Close: %v, want %v", err, ErrClosed)
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Fatal("a connection to a closed proxy was accepted")
	}
}
