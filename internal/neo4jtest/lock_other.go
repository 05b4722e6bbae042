//go:build !unix

package neo4jtest

import "sync"

// graphMu serialises the tests of one process; without flock, packages tested in parallel
// processes are not serialised: run them with `go test -p 1` on such systems.
var graphMu sync.Mutex

func lockGraph(_ string, waiting func()) (unlock func(), err error) {
	if !graphMu.TryLock() {
		waiting()
		graphMu.Lock()
	}
	return graphMu.Unlock, nil
}
