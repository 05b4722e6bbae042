package queryservice

import (
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// traceLog holds the events trace reports, in stream order, append-only: each event links to
// the previous one of its correlation id, and a map gives the latest. Events are never changed
// once appended, so a view reads the log as of its own sequence by skipping the later ones; the
// log needs no versioned table (a versioned table's entries per event and index cost several
// times the event).
//
// An event is kept compact (loggedEvent): its correlation id is the chain it is on, its type
// names are numbers into a table of the names met, its time is nanoseconds (read back in UTC),
// and the log grows by fixed chunks rather than by doubling one slice.
type traceLog struct {
	mu     sync.RWMutex
	chunks [][]loggedEvent
	n      int
	latest map[uuid.UUID]uint32 // correlation id to its latest event's index, plus one
	names  []string             // event and aggregate type names, by number
	number map[string]uint16
}

// loggedEvent is a traceEvent as the log keeps it.
type loggedEvent struct {
	seq                                     uint64
	nanos                                   int64
	id, aggregateID, commandID, causationID uuid.UUID
	prev                                    uint32 // the previous event of the correlation id, plus one; 0: none
	typ, aggregateType                      uint16
}

// traceChunk is the number of events in one chunk of the log.
const traceChunk = 4096

func newTraceLog() *traceLog {
	return &traceLog{latest: map[uuid.UUID]uint32{}, number: map[string]uint16{}}
}

func (l *traceLog) nameNumber(name string) uint16 {
	n, ok := l.number[name]
	if !ok {
		n = uint16(len(l.names))
		l.names = append(l.names, name)
		l.number[name] = n
	}
	return n
}

func (l *traceLog) at(i int) *loggedEvent { return &l.chunks[i/traceChunk][i%traceChunk] }

// append adds events, in stream order, after every event already there.
func (l *traceLog) append(events []traceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		if l.n%traceChunk == 0 {
			l.chunks = append(l.chunks, make([]loggedEvent, traceChunk))
		}
		*l.at(l.n) = loggedEvent{
			seq: e.seq, nanos: e.timestamp.UnixNano(), id: e.id, aggregateID: e.aggregateID, commandID: e.commandID,
			causationID: e.causationID, prev: l.latest[e.correlationID],
			typ: l.nameNumber(e.typ), aggregateType: l.nameNumber(e.aggregateType),
		}
		l.n++
		l.latest[e.correlationID] = uint32(l.n)
	}
}

// event is the i-th event with its correlation id.
func (l *traceLog) event(i int, correlation uuid.UUID) traceEvent {
	e := l.at(i)
	return traceEvent{
		seq: e.seq, typ: l.names[e.typ], id: e.id, aggregateType: l.names[e.aggregateType], aggregateID: e.aggregateID,
		commandID: e.commandID, correlationID: correlation, causationID: e.causationID,
		timestamp: time.Unix(0, e.nanos).UTC(),
	}
}

// correlated returns the events of one correlation id up to sequence seq, in stream order.
func (l *traceLog) correlated(correlation uuid.UUID, seq uint64) []traceEvent {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []traceEvent
	for i := l.latest[correlation]; i != 0; i = l.at(int(i) - 1).prev {
		if l.at(int(i)-1).seq <= seq {
			out = append(out, l.event(int(i)-1, correlation))
		}
	}
	slices.Reverse(out)
	return out
}

// upTo returns every event up to sequence seq, in stream order.
func (l *traceLog) upTo(seq uint64) []traceEvent {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := l.count(seq)
	correlations := make([]uuid.UUID, l.n)
	for c, i := range l.latest {
		for ; i != 0; i = l.at(int(i) - 1).prev {
			correlations[i-1] = c
		}
	}
	out := make([]traceEvent, n)
	for i := range n {
		out[i] = l.event(i, correlations[i])
	}
	return out
}

// count is the number of events up to sequence seq.
func (l *traceLog) count(seq uint64) int {
	lo, hi := 0, l.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.at(mid).seq <= seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
