package queryservice

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkTextIndexMemory reports the heap the text index of q holds per row over the benchmark
// fleet's texts (benchFleet), built in batches of a thousand rows as the model's commits build
// it, next to the length of the rows' texts, and the time the build took per row.
func BenchmarkTextIndexMemory(b *testing.B) {
	n := benchResources(b)
	m := NewModel()
	fillModel(b, m, n)
	texts := make([]textChange, 0, n)
	textBytes := 0
	m.View().each(func(r *resource) bool {
		text := r.text()
		texts = append(texts, textChange{id: r.id(), new: text})
		textBytes += len(text)
		return true
	})
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newTextIndex()
		start := time.Now()
		for chunk := range slices.Chunk(texts, 1000) {
			x.unstage(x.stage(chunk))
		}
		build := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/row")
		b.ReportMetric(float64(textBytes)/float64(n), "text-B/row")
		b.ReportMetric(float64(build.Nanoseconds())/float64(n), "build-ns/row")
		runtime.KeepAlive(x)
	}
}

// BenchmarkTextCandidates reports the time the text index takes to give q's candidates over the
// benchmark fleet (BenchmarkQ's q: 100 host names share it), without the rows' lookup and check.
func BenchmarkTextCandidates(b *testing.B) {
	n := benchResources(b)
	m := NewModel()
	fillModel(b, m, n)
	v := m.View()
	q := fmt.Sprintf("host-%05d", n/200)
	b.ResetTimer()
	for range b.N {
		ids, ok := v.text.candidates(q, v.textGen)
		if !ok || len(ids) < 100 {
			b.Fatalf("q %q: %d candidates, indexed %v", q, len(ids), ok)
		}
	}
}
