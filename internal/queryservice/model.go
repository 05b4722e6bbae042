package queryservice

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// sortField is a field List can sort by: its index key (the order of its index, as bytes) and
// the same order computed on the rows' values (cmp), which the index compares by.
type sortField struct {
	name      string
	appendKey func(b []byte, r *resource) []byte // appends r's key to b
	cmp       func(a, b *resource) int
	text      func(*resource) string // the value, of a field over a string; nil for the others
}

// stringField is a sort field over a string value: key is the value and sep, so that byte
// order is the strings' order (values hold no NUL).
func stringField(name string, value func(*resource) string) sortField {
	return sortField{name: name, appendKey: func(b []byte, r *resource) []byte { return append(append(b, value(r)...), sep) },
		cmp: func(a, b *resource) int { return strings.Compare(value(a), value(b)) }, text: value}
}

// idValueField is a sort field over a 16-byte id.
func idValueField(name string, value func(*resource) [16]byte) sortField {
	return sortField{name: name, appendKey: func(b []byte, r *resource) []byte { v := value(r); return append(b, v[:]...) },
		cmp: func(a, b *resource) int { x, y := value(a), value(b); return bytes.Compare(x[:], y[:]) }}
}

// timeField is a sort field over a time in nanoseconds.
func timeField(name string, value func(*resource) int64) sortField {
	return sortField{name: name, appendKey: func(b []byte, r *resource) []byte { return appendTimeKey(b, value(r)) },
		cmp: func(a, b *resource) int { return cmp.Compare(value(a), value(b)) }}
}

// sortFields are the fields of api.OrderFields; each has an index of the same name.
var sortFields = []sortField{
	stringField(api.OrderHostname, (*resource).hostname),
	timeField(api.OrderCreatedAt, func(r *resource) int64 { return r.created }),
	timeField(api.OrderUpdatedAt, func(r *resource) int64 { return r.updated }),
	stringField(api.OrderStatus, (*resource).statusName),
	stringField(api.OrderResourceType, (*resource).typeName),
	stringField(api.OrderCategory, (*resource).categoryName),
	idValueField(api.OrderOrganizationID, (*resource).organizationID),
	idValueField(api.OrderLocationID, (*resource).locationID),
	idValueField(api.OrderOwnerID, (*resource).ownerID),
	stringField(api.OrderAssetTag, (*resource).assetTag),
	stringField(api.OrderSerialNumber, func(r *resource) string { v, _ := r.serialNumber(); return v }),
	stringField(api.OrderManufacturer, func(r *resource) string { v, _ := r.manufacturer(); return v }),
	stringField(api.OrderModel, func(r *resource) string { v, _ := r.model(); return v }),
	{name: api.OrderVersion, appendKey: func(b []byte, r *resource) []byte { return binary.BigEndian.AppendUint64(b, r.version) },
		cmp: func(a, b *resource) int { return cmp.Compare(a.version, b.version) }},
}

func sortFieldNamed(name string) (sortField, bool) {
	for _, f := range sortFields {
		if f.name == name {
			return f, true
		}
	}
	return sortField{}, false
}

// appendTimeKey appends a time's key, which orders times as bytes: nanoseconds since the epoch
// with the sign bit flipped, big-endian.
func appendTimeKey(b []byte, nanos int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(nanos)^(1<<63))
}

// key is r's key in the field's index, without the id (see rowKey).
func (f sortField) key(r *resource) []byte { return f.appendKey(nil, r) }

// Model is the read model: every resource's state, with secondary indexes, and where the
// events of each correlation id are in the stream, at one stream sequence. One writer (Update)
// and any number of readers (View), which read a snapshot and never wait for the writer nor
// make it wait.
type Model struct {
	w     *tables                // the writer's tables, changed in place by Commit
	cur   atomic.Pointer[tables] // the last committed tables, read by views, never changed
	text  *textIndex
	trace *traceIndex

	// bulk (the writer's): commits keep only the rows, by id in a map, unpublished, until
	// EndBulk builds byID, the indexes and the text index in one go (StartBulk); nil outside a
	// bulk build.
	bulk    *bulkBuild
	written atomic.Uint64 // the sequence the writer has committed, published or not

	mu        sync.Mutex
	applied   uint64
	resources int
	changed   chan struct{} // closed and replaced on every commit
}

// NewModel returns an empty model.
func NewModel() *Model {
	m := &Model{w: newTables(), text: newTextIndex(), trace: newTraceIndex(), changed: make(chan struct{})}
	m.cur.Store(m.w.copy())
	return m
}

// Written is the stream sequence the writer has committed: Sequence, or beyond it while a bulk
// build is under way.
func (m *Model) Written() uint64 { return m.written.Load() }

// StartBulk makes the following commits, on an empty model, keep only the rows, in a map by id:
// no B-tree, no text index, and nothing published (Sequence and views stay where they are)
// until EndBulk builds every index from the rows at once, each sorted once and loaded in order,
// in parallel. The states of the resources changed last are kept decoded until a bound
// (maxBulkStates), so that a resource whose events come one in each batch, between other
// resources' events, is not decoded from its row and encoded again for every event.
// A catch-up from the first event is most of an instance's start, and an index built in bulk
// costs a fraction of the same index changed row by row (a row replaced several times during the
// catch-up is indexed once). Nothing may be served from the model in between: the service serves
// only once caught up. On a model that is not empty, StartBulk does nothing.
func (m *Model) StartBulk() {
	if m.w.byID.Len() == 0 && m.bulk == nil {
		m.bulk = &bulkBuild{rows: map[uuid.UUID]*resource{}, states: map[uuid.UUID]pendingState{}}
	}
}

// bulkBuild holds the rows of a bulk build (StartBulk): encoded, by id, and the states of the
// resources changed last, decoded, not yet encoded.
type bulkBuild struct {
	rows   map[uuid.UUID]*resource
	states map[uuid.UUID]pendingState
}

// maxBulkStates bounds the states a bulk build keeps decoded (a state takes several times its
// row's memory); beyond it they are encoded into rows.
const maxBulkStates = 8192

// flush encodes the decoded states into rows (a state that is not registered gets none).
func (bb *bulkBuild) flush() {
	for id, p := range bb.states {
		if p.state.Registered() {
			bb.rows[id] = newResource(p.state, p.version)
		}
	}
	clear(bb.states)
}

// EndBulk builds the indexes of the rows committed since StartBulk and publishes the model at
// the last committed sequence; without a bulk build under way it does nothing.
func (m *Model) EndBulk() {
	if m.bulk == nil {
		return
	}
	m.bulk.flush()
	rows := sortByID(m.bulk.rows)
	m.bulk = nil
	t := newTables()
	t.seq = m.w.seq
	loadAll(t.byID, rows)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.text.addRows(rows)
	}()
	t.loadIndexes(rows)
	<-done
	m.w = t
	m.publish(0, nil)
}

// sortByID returns the rows in id order, the order of byID.
func sortByID(rows map[uuid.UUID]*resource) []*resource {
	return sortByKeys(slices.Collect(maps.Values(rows)), func(b []byte, r *resource) []byte {
		return append(b, r.data()[1:hostnameAt]...)
	})
}

// state returns the writer's state of id (the zero State for none): during a bulk build, the
// state kept decoded, or else the row's.
func (m *Model) state(id uuid.UUID) (cr.State, error) {
	var r *resource
	if m.bulk != nil {
		if p, ok := m.bulk.states[id]; ok {
			return p.state, nil
		}
		r = m.bulk.rows[id]
	} else {
		r, _ = m.w.get(id)
	}
	if r == nil {
		return cr.State{}, nil
	}
	st, err := r.state()
	if err != nil {
		return cr.State{}, fmt.Errorf("queryservice: resource %s: %w", id, err)
	}
	return st, nil
}

// Sequence is the stream sequence the model has applied.
func (m *Model) Sequence() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// View is a consistent read of the model at one sequence.
type View struct {
	t       *tables
	text    *textIndex
	textGen uint64 // the text index's generation when the view was taken
	trace   *traceIndex
}

// View returns a snapshot of the model as of now.
func (m *Model) View() View {
	textGen := m.text.gen.Load() // before the snapshot: see textIndex
	return View{t: m.cur.Load(), text: m.text, textGen: textGen, trace: m.trace}
}

// Sequence is the stream sequence the view stands for.
func (v View) Sequence() uint64 { return v.t.seq }

// Resource returns the row of one resource, if the model has it.
func (v View) Resource(id uuid.UUID) (*resource, bool) { return v.t.get(id) }

// each calls fn with every row in id order until fn returns false.
func (v View) each(fn func(*resource) bool) { v.t.byID.Scan(fn) }

// WaitFor waits until the model has applied sequence seq or ctx is done; it returns the
// sequence applied then.
func (m *Model) WaitFor(ctx context.Context, seq uint64) uint64 {
	for {
		m.mu.Lock()
		applied, changed := m.applied, m.changed
		m.mu.Unlock()
		if applied >= seq {
			return applied
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return m.Sequence()
		}
	}
}

// Batch is one write to the model: events applied in stream order, visible to readers only
// once committed, all at once.
type Batch struct {
	m   *Model
	seq uint64
	// pending holds the states the batch changed, written to the tables once at Commit: a
	// resource's row and its indexes are replaced once per batch, not once per event, which
	// during a catch-up (several events of a resource in one batch) is most of the work.
	pending map[uuid.UUID]pendingState
	events  []traceEntry // for the trace index, at Commit
}

type pendingState struct {
	state   cr.State
	version uint64
}

// Begin starts a batch. There is one writer: a second batch must not begin before the first
// is committed.
func (m *Model) Begin() *Batch {
	return &Batch{m: m, seq: m.w.seq, pending: map[uuid.UUID]pendingState{}}
}

// Apply folds event e, stored at stream sequence seq, into its resource's state and records it
// for trace. A resource that is not registered after the event (its registration never
// applied) gets no row.
func (b *Batch) Apply(seq uint64, e cr.Event) error {
	meta := e.Meta()
	p, ok := b.pending[meta.AggregateID]
	if !ok {
		st, err := b.m.state(meta.AggregateID)
		if err != nil {
			return err
		}
		p.state = st
	}
	b.pending[meta.AggregateID] = pendingState{state: cr.Apply(p.state, e), version: seq}
	b.events = append(b.events, traceEntry{key: correlationKey(correlationOf(meta)), seq: seq})
	b.seq = seq
	return nil
}

// Skip moves the batch's position over an event that is not applied (another aggregate type,
// or one that cannot be decoded).
func (b *Batch) Skip(seq uint64) { b.seq = seq }

// Commit makes the batch visible and wakes the readers waiting for a sequence (during a bulk
// build, it keeps the states only: see StartBulk).
func (b *Batch) Commit() error {
	m := b.m
	if m.bulk != nil {
		return b.commitBulk()
	}
	added := 0
	var texts []textChange
	for id, p := range b.pending {
		if !p.state.Registered() {
			continue
		}
		old, _ := m.w.get(id)
		r := newResource(p.state, p.version)
		if old == nil {
			added++
		}
		change := textChange{id: id, new: r.text()}
		if old != nil {
			change.old = old.text()
		}
		if change.old != change.new {
			texts = append(texts, change)
		}
		m.w.put(old, r)
	}
	m.w.seq = b.seq
	m.written.Store(b.seq)
	m.trace.append(b.events) // views skip entries after their sequence
	m.publish(added, m.text.stage(texts))
	return nil
}

// commitBulk is Commit during a bulk build: the batch's states join those kept decoded, which
// are encoded into rows once there are maxBulkStates of them; nothing is published.
func (b *Batch) commitBulk() error {
	m, bb := b.m, b.m.bulk
	added := 0
	for id, p := range b.pending {
		prev, kept := bb.states[id]
		_, hasRow := bb.rows[id]
		if p.state.Registered() && !hasRow && !(kept && prev.state.Registered()) {
			added++
		}
		bb.states[id] = p
	}
	if len(bb.states) >= maxBulkStates {
		bb.flush()
	}
	m.w.seq = b.seq
	m.written.Store(b.seq)
	m.trace.append(b.events)
	m.mu.Lock()
	m.resources += added
	m.mu.Unlock()
	return nil
}

// publish makes the writer's tables the model's, with `added` more resources, and wakes the
// readers waiting for a sequence; the text index's removals are made once the tables are.
func (m *Model) publish(added int, removals []textRemoval) {
	m.cur.Store(m.w.copy())
	m.text.unstage(removals)
	m.mu.Lock()
	m.applied = m.w.seq
	m.resources += added
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Abort drops the batch: nothing of it reached the tables.
func (b *Batch) Abort() { b.pending = nil }

// Resources is the number of resources in the model.
func (m *Model) Resources() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resources
}
