package queryservice

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// traceLog holds the events trace reports, in stream order, append-only: each event links to
// the previous one of its correlation id, and a map gives the latest. Events are never changed
// once appended, so a view reads the log as of its own sequence by skipping the later ones; the
// log needs no versioned table (a versioned table's entries per event and index cost several times
// the event).
type traceLog struct {
	mu     sync.RWMutex
	events []traceEvent
	latest map[uuid.UUID]uint32 // correlation id to its latest event's index in events, plus one
}

func newTraceLog() *traceLog { return &traceLog{latest: map[uuid.UUID]uint32{}} }

// append adds events, in stream order, after every event already there.
func (l *traceLog) append(events []traceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		e.prev = l.latest[e.correlationID]
		l.events = append(l.events, e)
		l.latest[e.correlationID] = uint32(len(l.events))
	}
}

// correlated returns the events of one correlation id up to sequence seq, in stream order.
func (l *traceLog) correlated(correlation uuid.UUID, seq uint64) []traceEvent {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []traceEvent
	for i := l.latest[correlation]; i != 0; i = l.events[i-1].prev {
		if e := l.events[i-1]; e.seq <= seq {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	return out
}

// upTo returns every event up to sequence seq, in stream order.
func (l *traceLog) upTo(seq uint64) []traceEvent {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n, _ := slices.BinarySearchFunc(l.events, seq+1, func(e traceEvent, s uint64) int {
		switch {
		case e.seq < s:
			return -1
		case e.seq > s:
			return 1
		}
		return 0
	})
	return slices.Clone(l.events[:n])
}
