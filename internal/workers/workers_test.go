package workers

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestRunsEveryFunctionAndCloseEndsTheWorkers: functions run at once each get a worker; a
// function run after the others finished goes to an idle worker (no new goroutine); Close makes
// the idle workers exit.
func TestRunsEveryFunctionAndCloseEndsTheWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New()
	const n = 8
	var started, release, done sync.WaitGroup
	started.Add(n)
	release.Add(1)
	done.Add(n)
	for range n {
		p.Run(func() {
			started.Done()
			release.Wait()
			done.Done()
		})
	}
	started.Wait() // all n run at once: each on a worker of its own
	if got := runtime.NumGoroutine() - before; got != n {
		t.Fatalf("%d goroutines for %d functions running at once", got, n)
	}
	release.Done()
	done.Wait()
	waitGoroutines(t, before+n) // the workers wait for more work
	ran := make(chan struct{})
	p.Run(func() { close(ran) })
	<-ran
	if got := runtime.NumGoroutine() - before; got > n {
		t.Fatalf("%d goroutines after one more function on %d idle workers", got, n)
	}
	p.Close()
	p.Close() // a second Close does nothing
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d", runtime.NumGoroutine(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
