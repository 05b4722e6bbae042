package queryservice

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/hashicorp/go-memdb"
)

// resource is one row of the model: a resource's state, the fold of its events by the domain's
// Apply, and the stream sequence of its last event. Rows are never changed once inserted (memdb
// readers may hold them): an event replaces the row.
type resource struct {
	id      uuid.UUID
	state   cr.State
	version uint64
	// text is what the free-text filter q searches, lower-case, fields separated by sep.
	text string
	// encoded is the row's JSON form once a reply needed it (rowJSON).
	encoded atomic.Pointer[[]byte]
}

func newResource(st cr.State, version uint64) *resource {
	var b strings.Builder
	add := func(s string, ok bool) {
		if ok && s != "" {
			b.WriteString(strings.ToLower(s))
			b.WriteByte(sep)
		}
	}
	add(st.Hostname().String(), true)
	add(st.AssetTag())
	add(st.SerialNumber())
	add(st.Model())
	for _, v := range st.Metadata() {
		add(v, true)
	}
	return &resource{id: st.ID(), state: st, version: version, text: b.String()}
}

// sortField is a field List can sort by, with its index key.
type sortField struct {
	name string
	key  func(*resource) []byte
}

// sortFields are the fields of api.OrderFields; each has an index of the same name.
var sortFields = []sortField{
	{api.OrderHostname, func(r *resource) []byte { return stringKey(r.state.Hostname().String()) }},
	{api.OrderCreatedAt, func(r *resource) []byte { return timeKey(r.state.CreatedAt()) }},
	{api.OrderUpdatedAt, func(r *resource) []byte { return timeKey(r.state.UpdatedAt()) }},
	{api.OrderStatus, func(r *resource) []byte { return stringKey(r.state.Status().String()) }},
	{api.OrderResourceType, func(r *resource) []byte { return stringKey(r.state.Type().String()) }},
	{api.OrderCategory, func(r *resource) []byte { return stringKey(r.state.Type().Category().String()) }},
	{api.OrderOrganizationID, func(r *resource) []byte { id, _ := r.state.OrganizationID(); return id[:] }},
	{api.OrderLocationID, func(r *resource) []byte { id, _ := r.state.LocationID(); return id[:] }},
	{api.OrderOwnerID, func(r *resource) []byte { id, _ := r.state.OwnerID(); return id[:] }},
	{api.OrderAssetTag, func(r *resource) []byte { v, _ := r.state.AssetTag(); return stringKey(v) }},
	{api.OrderSerialNumber, func(r *resource) []byte { v, _ := r.state.SerialNumber(); return stringKey(v) }},
	{api.OrderManufacturer, func(r *resource) []byte { v, _ := r.state.Manufacturer(); return stringKey(v) }},
	{api.OrderModel, func(r *resource) []byte { v, _ := r.state.Model(); return stringKey(v) }},
	{api.OrderVersion, func(r *resource) []byte { return uint64Key(r.version) }},
}

func sortFieldNamed(name string) (sortField, bool) {
	for _, f := range sortFields {
		if f.name == name {
			return f, true
		}
	}
	return sortField{}, false
}

// timeKey orders times as bytes: nanoseconds since the epoch with the sign bit flipped.
func timeKey(t time.Time) []byte { return uint64Key(uint64(t.UnixNano()) ^ (1 << 63)) }

// traceEvent is one event of the stream as trace reports it.
type traceEvent struct {
	seq           uint64
	typ           string
	id            uuid.UUID
	aggregateType string
	aggregateID   uuid.UUID
	commandID     uuid.UUID
	correlationID uuid.UUID
	causationID   uuid.UUID
	timestamp     time.Time
	prev          uint32 // the previous event of the correlation id in the trace log, plus one; 0: none
}

// position is the model's only row of its kind: the stream sequence it has applied.
type position struct {
	seq uint64
}

// Model is the read model: every resource's state, with secondary indexes, and the events by
// correlation id, at one stream sequence. One writer (Update) and any number of readers (View),
// which read a snapshot and never wait for the writer nor make it wait.
type Model struct {
	db    *memdb.MemDB
	text  *textIndex
	trace *traceLog

	mu        sync.Mutex
	applied   uint64
	resources int
	changed   chan struct{} // closed and replaced on every commit
}

// NewModel returns an empty model.
func NewModel() *Model {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("queryservice: model schema: %v", err)) // a programming error
	}
	return &Model{db: db, text: newTextIndex(), trace: newTraceLog(), changed: make(chan struct{})}
}

// Sequence is the stream sequence the model has applied.
func (m *Model) Sequence() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// View is a consistent read of the model at one sequence.
type View struct {
	txn     *memdb.Txn
	seq     uint64
	text    *textIndex
	textGen uint64 // the text index's generation when the view was taken
	trace   *traceLog
}

// View returns a snapshot of the model as of now.
func (m *Model) View() View {
	textGen := m.text.gen.Load() // before the snapshot: see textIndex
	txn := m.db.Txn(false)
	var seq uint64
	if p, err := txn.First(tablePosition, indexID, positionKey); err == nil && p != nil {
		seq = p.(*position).seq
	}
	return View{txn: txn, seq: seq, text: m.text, textGen: textGen, trace: m.trace}
}

// Sequence is the stream sequence the view stands for.
func (v View) Sequence() uint64 { return v.seq }

// Resource returns the row of one resource, if the model has it.
func (v View) Resource(id uuid.UUID) (*resource, bool) {
	r, err := v.txn.First(tableResources, indexID, id[:])
	if err != nil || r == nil {
		return nil, false
	}
	return r.(*resource), true
}

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
	txn *memdb.Txn
	seq uint64
	// pending holds the states the batch changed, written to the tables once at Commit: a
	// resource's row and its indexes are replaced once per batch, not once per event, which
	// during a catch-up (several events of a resource in one batch) is most of the work.
	pending map[uuid.UUID]pendingState
	events  []traceEvent // for the trace log, at Commit
}

type pendingState struct {
	state   cr.State
	version uint64
}

// Begin starts a batch. There is one writer: a second batch must not begin before the first
// is committed.
func (m *Model) Begin() *Batch {
	return &Batch{m: m, txn: m.db.Txn(true), seq: m.Sequence(), pending: map[uuid.UUID]pendingState{}}
}

// Apply folds event e, stored at stream sequence seq, into its resource's state and records it
// for trace. A resource that is not registered after the event (its registration never
// applied) gets no row.
func (b *Batch) Apply(seq uint64, e cr.Event) error {
	meta := e.Meta()
	p, ok := b.pending[meta.AggregateID]
	if !ok {
		old, err := b.txn.First(tableResources, indexID, meta.AggregateID[:])
		if err != nil {
			return err
		}
		if old != nil {
			p.state = old.(*resource).state
		}
	}
	b.pending[meta.AggregateID] = pendingState{state: cr.Apply(p.state, e), version: seq}
	causation := meta.CausationID
	if causation == uuid.Nil {
		causation = meta.CommandID
	}
	correlation := meta.CorrelationID
	if correlation == uuid.Nil {
		correlation = meta.CommandID
	}
	b.events = append(b.events, traceEvent{
		seq: seq, typ: e.EventType(), id: meta.EventID, aggregateType: aggregateType, aggregateID: meta.AggregateID,
		commandID: meta.CommandID, correlationID: correlation, causationID: causation, timestamp: meta.Timestamp,
	})
	b.seq = seq
	return nil
}

// Skip moves the batch's position over an event that is not applied (another aggregate type,
// or one that cannot be decoded).
func (b *Batch) Skip(seq uint64) { b.seq = seq }

// Commit makes the batch visible and wakes the readers waiting for a sequence.
func (b *Batch) Commit() error {
	added := 0
	var texts []textChange
	for id, p := range b.pending {
		if !p.state.Registered() {
			continue
		}
		old, err := b.txn.First(tableResources, indexID, id[:])
		if err != nil {
			b.txn.Abort()
			return err
		}
		r := newResource(p.state, p.version)
		change := textChange{id: id, new: r.text}
		if old == nil {
			added++
		} else {
			change.old = old.(*resource).text
		}
		if change.old != change.new {
			texts = append(texts, change)
		}
		if err := b.txn.Insert(tableResources, r); err != nil {
			b.txn.Abort()
			return fmt.Errorf("queryservice: insert resource %s: %w", id, err)
		}
	}
	if err := b.txn.Insert(tablePosition, &position{seq: b.seq}); err != nil {
		b.txn.Abort()
		return fmt.Errorf("queryservice: position %d: %w", b.seq, err)
	}
	removals := b.m.text.stage(texts)
	b.m.trace.append(b.events) // views skip events after their sequence
	b.txn.Commit()
	b.m.text.unstage(removals)
	m := b.m
	m.mu.Lock()
	m.applied = b.seq
	m.resources += added
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	return nil
}

// Abort drops the batch.
func (b *Batch) Abort() { b.txn.Abort() }

// Resources is the number of resources in the model.
func (m *Model) Resources() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resources
}
