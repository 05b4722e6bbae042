package testkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestHelpers(t *testing.T) {
	if addr := FreeAddr(t); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q", addr)
	}
	if p := FreePort(t); p <= 0 {
		t.Fatalf("FreePort = %d", p)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, "body")
	}))
	defer srv.Close()
	if code, body := HTTPGet(srv.URL); code != http.StatusTeapot || body != "body" {
		t.Fatalf("HTTPGet = %d %q", code, body)
	}
	if code, _ := HTTPGet("http://" + FreeAddr(t)); code != 0 {
		t.Fatalf("HTTPGet of a closed port = %d, want 0", code)
	}
	var b LogBuffer
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { fmt.Fprint(&b, "x") })
	}
	wg.Wait()
	if b.String() != strings.Repeat("x", 10) {
		t.Fatalf("LogBuffer = %q", b.String())
	}
}
