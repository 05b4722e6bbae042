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
// command that changed nothing) and the aggregate's version right after it.
type commandResult struct {
	version uint64
	events  []api.EventRef
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
type aggregate struct {
	state   cr.State
	lastSeq uint64
	// written maps the id of every command whose events are in the stream up to lastSeq
	// (their Cim-Command-Id header) to those events.
	written map[uuid.UUID]commandResult
	// unchanged maps the ids of commands known to have changed nothing (decided here, or read
	// from the results bucket) to their result.
	unchanged map[uuid.UUID]commandResult
	// everHeld holds every (field, value) the resource has had up to lastSeq, so that a command
	// setting a value never held is known not to have changed nothing before.
	everHeld map[heldValue]struct{}
}

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

// heldValue is a value a field of the resource had at some point.
type heldValue struct{ field, value string }

func (a *aggregate) held(field, value string) bool {
	_, ok := a.everHeld[heldValue{field, value}]
	return ok
}

// noteHeld records the values an event gives the resource.
func (a *aggregate) noteHeld(e cr.Event) {
	if a.everHeld == nil {
		a.everHeld = make(map[heldValue]struct{})
	}
	add := func(field, value string) { a.everHeld[heldValue{field, value}] = struct{}{} }
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
	if r, ok := a.written[commandID]; ok {
		return r, true
	}
	r, ok := a.unchanged[commandID]
	return r, ok
}

// apply folds stored events (read from the store, in order, all after lastSeq) into a.
func (a *aggregate) apply(recs []jetstore.RecordedEvent) error {
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
	if m.CommandID == uuid.Nil {
		return // a legacy event recorded before command ids existed
	}
	if a.written == nil {
		a.written = make(map[uuid.UUID]commandResult)
	}
	r := a.written[m.CommandID]
	r.version = seq
	r.events = append(r.events, api.EventRef{Type: e.EventType(), ID: m.EventID.String(), Sequence: seq})
	a.written[m.CommandID] = r
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
