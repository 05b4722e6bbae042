package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/inventory"
)

// TestImportReturnsWhenCancelledWhileReading: an import from a reader that blocks (standard input
// with nobody typing) ends when its ctx is cancelled.
func TestImportReturnsWhenCancelledWhileReading(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := inventory.Import(ctx, nil, inventory.NewJSONLReader(pr), inventory.Options{})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Import = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Import did not return within a minute of its ctx's cancellation")
	}
}

// rowSource produces a CSV inventory of n rows on demand, never holding more than one.
type rowSource struct {
	n, next int
	buf     []byte
}

func (s *rowSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.next == 0:
			s.buf = []byte("hostname,resource_type,metadata,policies\n")
		case s.next > s.n:
			return 0, io.EOF
		default:
			s.buf = fmt.Appendf(nil, "host-%07d.example.com,vm,rack=r%d;note=%0200d,%s;%s\n", s.next, s.next%40, s.next, pol1, pol2)
		}
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestCSVReaderStreams: reading 100,000 rows (about 30 MB) holds no more of them than the one
// being read: the live heap after a collection stays far below the file's size.
func TestCSVReaderStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 100,000 rows")
	}
	const rows = 100_000
	r, err := inventory.NewCSVReader(&rowSource{n: rows})
	if err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	for i := 0; ; i++ {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			if i != rows {
				t.Fatalf("read %d rows, want %d", i, rows)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%25_000 == 24_999 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}
	// 100,000 rows of over 300 bytes each would be more than 30 MB if they were kept.
	if grown := int64(peak) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("the live heap grew by %d bytes while reading", grown)
	}
}
