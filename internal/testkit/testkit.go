// Package testkit holds the small helpers many packages' tests share: a free loopback address
// outside the ephemeral port range, a plain HTTP GET, a log buffer safe for concurrent writers,
// and a poll with a deadline (WaitFor). (Embedded NATS servers are in internal/natstest.)
package testkit

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/cim-infra/registry/internal/freeport"
)

// FreeAddr returns a loopback address ("127.0.0.1:port") that was free a moment ago, outside the
// kernel's ephemeral port range (see internal/freeport).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatalf("testkit: free address: %v", err)
	}
	return addr
}

// FreePort returns the port of FreeAddr.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatalf("testkit: free port: %v", err)
	}
	return p
}

// HTTPGet returns the status code and body of a GET; a failed request gives status 0 and the
// error as body, so that callers can poll an endpoint that is not up yet.
func HTTPGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// LogBuffer collects log lines written from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
