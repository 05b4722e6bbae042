package commandservice

import (
	"container/list"
	"sync"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// commandResult is what one command did to an aggregate: the events it wrote (none for a
// command that changed nothing) and the aggregate's version right after it, or its refusal.
type commandResult struct {
	version uint64
	events  []api.EventRef
	// digest is the requestDigest of the command, where known without a read: for results of
	// commands that wrote nothing. A written command's is on its events (HeaderCommandDigest).
	digest string
	// refusal is the error reply of a command the domain refused; nil otherwise.
	refusal *api.Error
}

func (r commandResult) reply(id uuid.UUID, duplicate bool) api.CommandReply {
	events := r.events
	if events == nil {
		events = []api.EventRef{}
	}
	return api.CommandReply{AggregateID: id.String(), Version: r.version, Events: events, Duplicate: duplicate}
}

// aggregate is an instance's knowledge of one resource: its state as of lastSeq, and the
// results of the commands known to have been applied to it.
//
// Every command id of the history is kept, for as long as the aggregate is cached: a retry may
// come at any time, and only its command id tells it from a new command. The bookkeeping is
// compact instead, since it grows with every event of every cached history
// (BenchmarkAggregateMemory reports the heap per event; figures in BENCHMARKS.md).
type aggregate struct {
	state   cr.State
	lastSeq uint64
	// lastEventID is the id of the event at lastSeq: a snapshot is only used if the stream
	// still holds that event at that sequence.
	lastEventID uuid.UUID
	// snapSeq is the sequence of the latest snapshot known to be stored for the aggregate (0
	// for none): an evicted aggregate is snapshotted only if it moved past it.
	snapSeq uint64
	// unverified is set on an aggregate read from a snapshot whose currency was not checked:
	// refresh verifies it, and a successful append (conditional on lastSeq) proves it.
	unverified bool
	// events are the events of the history that carry a command id, in order; written maps
	// each command id to the run of events it wrote (the events of one command are one
	// atomic append, so contiguous). scattered holds, as a precaution, the results of any
	// command whose events are not contiguous.
	events    []writtenEvent
	written   map[uuid.UUID]eventRun
	scattered map[uuid.UUID]commandResult
	// everHeld holds a hash of every (field, value) the resource has had up to lastSeq. It is
	// part of the snapshot format (schema 1) but no longer consulted: the results bucket is read
	// before every append of a command sent with its own id.
	everHeld map[uint64]struct{}
}

// writtenEvent is what a reply says of a written event.
type writtenEvent struct {
	seq uint64
	id  uuid.UUID
	typ string
}

// eventRun is the events of one command: events[first:first+count].
type eventRun struct{ first, count uint32 }

// Fields of heldValue.
const (
	heldOrganization = "organization"
	heldLocation     = "location"
	heldOwner        = "owner"
	heldConcept      = "account_concept"
	heldManufacturer = "manufacturer"
	heldModel        = "model"
	heldSerial       = "serial_number"
	heldAssetTag     = "asset_tag"
	heldMetadata     = "metadata" // value: key NUL value
	heldStatus       = "status"
)

// heldKey is the hash of a value a field of the resource had at some point: 64-bit FNV-1a of
// field, a zero byte and value. It is kept in snapshots, so it must be the same in every
// process and version (a change needs a new snapshot format).
func heldKey(field, value string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(field); i++ {
		h = (h ^ uint64(field[i])) * prime
	}
	h *= prime // the zero byte
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * prime
	}
	return h
}

// noteHeld records the values an event gives the resource.
func (a *aggregate) noteHeld(e cr.Event) {
	if a.everHeld == nil {
		a.everHeld = make(map[uint64]struct{})
	}
	add := func(field, value string) { a.everHeld[heldKey(field, value)] = struct{}{} }
	switch e := e.(type) {
	case cr.ResourceRegistered:
		add(heldStatus, cr.StatusProvisioning.String())
	case cr.OrganizationAssigned:
		add(heldOrganization, e.OrganizationID.String())
	case cr.LocationAssigned:
		add(heldLocation, e.LocationID.String())
	case cr.OwnerAssigned:
		add(heldOwner, e.OwnerID.String())
	case cr.AccountConceptAssigned:
		add(heldConcept, e.ConceptID.String())
	case cr.HardwareDetailsSet:
		if e.Manufacturer != nil {
			add(heldManufacturer, *e.Manufacturer)
		}
		if e.Model != nil {
			add(heldModel, *e.Model)
		}
		if e.SerialNumber != nil {
			add(heldSerial, *e.SerialNumber)
		}
	case cr.AssetTagAssigned:
		add(heldAssetTag, e.AssetTag)
	case cr.MetadataUpdated:
		add(heldMetadata, e.Key+"\x00"+e.Value)
	case cr.StatusChanged:
		add(heldStatus, e.To.String())
	}
}

// result returns the recorded result of a command, if it is known to have been applied.
func (a *aggregate) result(commandID uuid.UUID) (commandResult, bool) {
	if run, ok := a.written[commandID]; ok {
		r := commandResult{events: make([]api.EventRef, run.count)}
		for i, e := range a.events[run.first : run.first+run.count] {
			r.events[i] = api.EventRef{Type: e.typ, ID: e.id.String(), Sequence: e.seq}
			r.version = e.seq
		}
		return r, true
	}
	r, ok := a.scattered[commandID]
	return r, ok
}

// apply folds stored events (read from the store, in order, all after lastSeq) into a.
func (a *aggregate) apply(recs ...jetstore.RecordedEvent) error {
	for _, rec := range recs {
		e, err := resourcestore.FromStore(rec)
		if err != nil {
			return err
		}
		a.record(e, rec.Sequence)
	}
	return nil
}

// record folds one event stored at seq into a and notes it under its command id.
func (a *aggregate) record(e cr.Event, seq uint64) {
	a.state = cr.Apply(a.state, e)
	a.lastSeq = seq
	a.noteHeld(e)
	m := e.Meta()
	a.lastEventID = m.EventID
	if m.CommandID == uuid.Nil {
		return // a legacy event recorded before command ids existed
	}
	if r, ok := a.scattered[m.CommandID]; ok {
		r.version, r.events = seq, append(r.events, api.EventRef{Type: e.EventType(), ID: m.EventID.String(), Sequence: seq})
		a.scattered[m.CommandID] = r
		return
	}
	if a.written == nil {
		a.written = make(map[uuid.UUID]eventRun)
	}
	next := uint32(len(a.events))
	run, ok := a.written[m.CommandID]
	if ok && run.first+run.count != next {
		// Not contiguous with the command's earlier events: kept apart, in full.
		r, _ := a.result(m.CommandID)
		r.version, r.events = seq, append(r.events, api.EventRef{Type: e.EventType(), ID: m.EventID.String(), Sequence: seq})
		delete(a.written, m.CommandID)
		if a.scattered == nil {
			a.scattered = make(map[uuid.UUID]commandResult)
		}
		a.scattered[m.CommandID] = r
		return
	}
	if !ok {
		run.first = next
	}
	run.count++
	a.written[m.CommandID] = run
	a.events = append(a.events, writtenEvent{seq: seq, id: m.EventID, typ: e.EventType()})
}

// entry is one cached aggregate. Its mutex serialises the commands and queries on that
// aggregate within the instance; while a request holds or waits for it, the entry is pinned
// and cannot be evicted.
type entry struct {
	id uuid.UUID

	mu     sync.Mutex // serialises work on the aggregate; guards loaded and agg
	loaded bool
	agg    aggregate

	// Guarded by cache.mu.
	pins int
	elem *list.Element
}

// cache is a bounded LRU of aggregates with a lock per aggregate.
type cache struct {
	capacity int
	// evicted, if set, is called (under mu, so it must not block) with every loaded entry
	// evicted for capacity. Nobody else holds the entry any more: its aggregate is the
	// callee's.
	evicted func(*entry)

	mu      sync.Mutex
	entries map[uuid.UUID]*entry
	lru     *list.List // of *entry, most recently used first
}

func newCache(capacity int) *cache {
	return &cache{capacity: capacity, entries: make(map[uuid.UUID]*entry), lru: list.New()}
}

// acquire returns the aggregate's entry, created empty if absent, locked for the caller.
// The caller must release it.
func (c *cache) acquire(id uuid.UUID) *entry {
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok {
		e = &entry{id: id}
		e.elem = c.lru.PushFront(e)
		c.entries[id] = e
	} else {
		c.lru.MoveToFront(e.elem)
	}
	e.pins++
	c.mu.Unlock()
	e.mu.Lock()
	return e
}

// release unlocks and unpins the entry, then evicts the least recently used unpinned entries
// beyond capacity. An entry that failed to load is dropped at once, so that the next request
// loads it again.
func (c *cache) release(e *entry) {
	loaded := e.loaded
	e.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e.pins--
	if !loaded && e.pins == 0 && e.elem != nil {
		c.remove(e)
	}
	for el := c.lru.Back(); c.lru.Len() > c.capacity && el != nil; {
		prev := el.Prev()
		if victim := el.Value.(*entry); victim.pins == 0 {
			c.remove(victim)
			if victim.loaded && c.evicted != nil {
				c.evicted(victim)
			}
		}
		el = prev
	}
}

func (c *cache) remove(e *entry) {
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.entries, e.id)
}

// len returns the number of cached aggregates.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
