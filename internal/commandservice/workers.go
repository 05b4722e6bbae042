package commandservice

import (
	"sync"
	"time"
)

// workerIdle is how long a worker waits for another request before it exits.
const workerIdle = 2 * time.Second

// workers runs requests on goroutines that stay for the next request: a new goroutine per
// request pays for its creation and, above all, for growing its stack, which decoding JSON
// outgrows on every request (runtime.newstack shows in a CPU profile of BenchmarkCommands run
// without workers). A worker keeps its grown stack; it exits after workerIdle without work, or
// when stop is closed.
type workers struct {
	work    chan func()
	stop    chan struct{}
	stopped sync.Once
}

func newWorkers() *workers {
	return &workers{work: make(chan func()), stop: make(chan struct{})}
}

// run runs f on an idle worker, or on a new one if none is idle. The caller bounds how many
// run at once (Options.MaxInFlight).
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close makes the idle workers exit; call it once no request is in flight. Later calls do
// nothing.
func (w *workers) close() { w.stopped.Do(func() { close(w.stop) }) }
