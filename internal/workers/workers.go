// Package workers runs a service's requests on goroutines that stay for the next request.
package workers

import (
	"sync"
	"time"
)

// idle is how long a worker waits for another request before it exits.
const idle = 2 * time.Second

// Pool runs requests on goroutines that stay for the next request: a new goroutine per request
// pays for its creation and, above all, for growing its stack, which decoding a request's JSON
// outgrows on every request (runtime.newstack shows in a CPU profile of the command service's
// BenchmarkCommands, or of the query service's BenchmarkListSelective, run without a pool). A
// worker keeps its grown stack; it exits after two seconds without work, or once the pool is
// closed.
type Pool struct {
	work    chan func()
	stop    chan struct{}
	stopped sync.Once
}

// New returns a pool with no worker yet.
func New() *Pool {
	return &Pool{work: make(chan func()), stop: make(chan struct{})}
}

// Run runs f on an idle worker, or on a new one if none is idle. The caller bounds how many
// run at once.
func (p *Pool) Run(f func()) {
	select {
	case p.work <- f:
	default:
		go p.loop(f)
	}
}

func (p *Pool) loop(f func()) {
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		f()
		timer.Reset(idle)
		select {
		case f = <-p.work:
		case <-timer.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Close makes the idle workers exit; call it once no request is in flight. Later calls do
// nothing.
func (p *Pool) Close() { p.stopped.Do(func() { close(p.stop) }) }
