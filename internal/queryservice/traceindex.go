package queryservice

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/google/uuid"
)

// traceIndex finds the stream sequences of a correlation id's events; trace reads the events
// themselves from the stream. It keeps 16 bytes per event: a 64-bit key of the correlation id
// (correlationKey) and the sequence. Two correlation ids may share a key: a lookup returns the
// sequences of both, and trace drops the events whose correlation id is another.
//
// The entries are in immutable runs sorted by key, plus a tail in stream order: an append goes
// to the tail, a full tail is sorted into a run, and two runs of the same size are merged, so
// that there are about log2(events/traceTail) runs. A lookup binary-searches every run and
// scans the tail. There is one writer (Commit) and readers never wait: each reads the
// published state, whose runs never change and whose tail is only written past its length.
type traceIndex struct {
	cur atomic.Pointer[traceState]
}

// traceEntry is one event in the index.
type traceEntry struct {
	key, seq uint64
}

// traceState is one published state of the index.
type traceState struct {
	runs [][]traceEntry // each sorted by key then sequence; merged when two have one size
	tail []traceEntry   // stream order; cap traceTail, appended beyond len only by the writer
}

// traceTail is the number of entries the tail holds before it is sorted into a run.
const traceTail = 4096

func newTraceIndex() *traceIndex {
	x := &traceIndex{}
	x.cur.Store(&traceState{tail: make([]traceEntry, 0, traceTail)})
	return x
}

// correlationKey is the 64-bit key of a correlation id: FNV-1a over its 16 bytes, stable from
// one process to the next (snapshots store the keys).
func correlationKey(id uuid.UUID) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range id {
		h ^= uint64(b)
		h *= prime
	}
	return h
}

func compareEntries(a, b traceEntry) int {
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// append adds entries, in stream order, after every entry already there, and publishes them
// at once.
func (x *traceIndex) append(entries []traceEntry) {
	if len(entries) == 0 {
		return
	}
	old := x.cur.Load()
	st := &traceState{runs: old.runs, tail: old.tail}
	for _, e := range entries {
		if len(st.tail) == traceTail {
			st.addRun(st.tail)
			st.tail = make([]traceEntry, 0, traceTail)
		}
		st.tail = append(st.tail, e) // past the length readers see: they never read it
	}
	x.cur.Store(st)
}

// addRun sorts a copy of entries into a new run and merges the last runs while they have the
// same size. The runs slice is new: readers keep the one they loaded.
func (st *traceState) addRun(entries []traceEntry) {
	run := slices.Clone(entries)
	slices.SortFunc(run, compareEntries)
	runs := slices.Clone(st.runs)
	for len(runs) > 0 && len(runs[len(runs)-1]) <= len(run) {
		run = mergeRuns(runs[len(runs)-1], run)
		runs = runs[:len(runs)-1]
	}
	st.runs = append(runs, run)
}

func mergeRuns(a, b []traceEntry) []traceEntry {
	out := make([]traceEntry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if compareEntries(a[0], b[0]) <= 0 {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// sequences returns the stream sequences, at or below seq, of the events whose correlation id
// has key, in stream order.
func (x *traceIndex) sequences(key, seq uint64) []uint64 {
	st := x.cur.Load()
	var out []uint64
	for _, run := range st.runs {
		i, _ := slices.BinarySearchFunc(run, traceEntry{key: key}, compareEntries)
		for ; i < len(run) && run[i].key == key; i++ {
			if run[i].seq <= seq {
				out = append(out, run[i].seq)
			}
		}
	}
	for _, e := range st.tail {
		if e.key == key && e.seq <= seq {
			out = append(out, e.seq)
		}
	}
	slices.Sort(out)
	return out
}

// upTo returns every entry at or below sequence seq, sorted by key then sequence.
func (x *traceIndex) upTo(seq uint64) []traceEntry {
	st := x.cur.Load()
	var out []traceEntry
	for _, run := range append(slices.Clone(st.runs), st.tail) {
		for _, e := range run {
			if e.seq <= seq {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// load replaces the index of an empty model with entries (a snapshot's), in any order.
func (x *traceIndex) load(entries []traceEntry) {
	run := slices.Clone(entries)
	slices.SortFunc(run, compareEntries)
	st := &traceState{tail: make([]traceEntry, 0, traceTail)}
	if len(run) > 0 {
		st.runs = [][]traceEntry{run}
	}
	x.cur.Store(st)
}

// size is the memory the index's entries take, in bytes (runs and tail capacity).
func (x *traceIndex) size() int {
	st := x.cur.Load()
	n := cap(st.tail)
	for _, run := range st.runs {
		n += cap(run)
	}
	return n * 16
}
