// Package resourcestore binds the ComputeResource domain to the aggregate-agnostic event store:
// the aggregate type's subject token, the domain's upcasters, and the conversions between domain
// events and stored events. Every service uses it, so that all of them read and write the same
// way.
package resourcestore

import (
	"encoding/hex"
	"fmt"
	"strconv"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// AggregateType is the subject token of compute resources: their events are stored on
// <prefix>.computeresource.<id>.
const AggregateType = "computeresource"

// Ref is the store address of the resource with that id.
func Ref(id uuid.UUID) jetstore.AggregateRef {
	return jetstore.AggregateRef{Type: AggregateType, ID: id.String()}
}

// Upcasters returns the domain's upcasters in the store's form, for jetstore.WithUpcasters.
// Every reader upcasts through them: a Store made with them on load, DecodeMsg on a consumed
// message; cr.DecodeEvent reads only current versions.
func Upcasters() []jetstore.Upcaster {
	ups := cr.Upcasters()
	out := make([]jetstore.Upcaster, len(ups))
	for i, u := range ups {
		out[i] = jetstore.Upcaster{EventType: u.EventType, FromVersion: u.FromVersion, Upcast: u.Upcast}
	}
	return out
}

// upcasters is Upcasters as a registry, for DecodeMsg. The domain's list is fixed at build
// time, so an invalid one is a bug that the package's tests meet first.
var upcasters = func() *jetstore.Upcasters {
	reg, err := jetstore.NewUpcasters(Upcasters()...)
	if err != nil {
		panic(fmt.Sprintf("resourcestore: the domain's upcasters: %v", err))
	}
	return reg
}()

// ToStore encodes domain events for an append.
func ToStore(events []cr.Event) ([]jetstore.Event, error) {
	out := make([]jetstore.Event, len(events))
	for i, e := range events {
		enc, err := cr.EncodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("resourcestore: encode %s: %w", e.EventType(), err)
		}
		id, correlation, causation, command := eventIDs(e.Meta())
		out[i] = jetstore.Event{
			ID:            id,
			Type:          enc.Type,
			SchemaVersion: enc.Version,
			Data:          enc.Data,
			CorrelationID: correlation,
			CausationID:   causation,
			CommandID:     command,
		}
	}
	return out, nil
}

// FromStore decodes a stored event into its domain event.
func FromStore(r jetstore.RecordedEvent) (cr.Event, error) {
	e, err := cr.DecodeEvent(r.Type, r.SchemaVersion, r.Data)
	if err != nil {
		return nil, fmt.Errorf("resourcestore: event at sequence %d of %s: %w", r.Sequence, r.Aggregate, err)
	}
	return e, nil
}

// FoldStored applies stored events to s in order.
func FoldStored(s cr.State, recs []jetstore.RecordedEvent) (cr.State, error) {
	for _, r := range recs {
		e, err := FromStore(r)
		if err != nil {
			return s, err
		}
		s = cr.Apply(s, e)
	}
	return s, nil
}

// DecodeMsg decodes an event message as a consumer receives it, from the store's headers and
// payload; old schema versions are upcast by the registry of Upcasters, as a Store does.
func DecodeMsg(h nats.Header, data []byte) (cr.Event, error) {
	typ := h.Get(jetstore.HeaderEventType)
	if typ == "" {
		return nil, fmt.Errorf("resourcestore: message has no %s header", jetstore.HeaderEventType)
	}
	v, err := strconv.Atoi(h.Get(jetstore.HeaderEventVersion))
	if err != nil {
		return nil, fmt.Errorf("resourcestore: %s header %q: %w", jetstore.HeaderEventVersion, h.Get(jetstore.HeaderEventVersion), err)
	}
	rec := jetstore.RecordedEvent{Event: jetstore.Event{Type: typ, SchemaVersion: v, Data: data}}
	if err := upcasters.Upcast(&rec); err != nil {
		return nil, err
	}
	return cr.DecodeEvent(rec.Type, rec.SchemaVersion, rec.Data)
}

// eventIDs returns m's event id and its correlation, causation and command ids ("" for a nil
// one) as uuid.UUID's String gives them, in one allocation: every command appends an event
// with all four.
func eventIDs(m cr.EventMeta) (event, correlation, causation, command string) {
	var buf [4 * 36]byte
	for i, id := range [4]uuid.UUID{m.EventID, m.CorrelationID, m.CausationID, m.CommandID} {
		encodeUUID(buf[i*36:(i+1)*36], id)
	}
	all := string(buf[:])
	optional := func(i int, id uuid.UUID) string {
		if id == uuid.Nil {
			return ""
		}
		return all[i*36 : (i+1)*36]
	}
	return all[:36], optional(1, m.CorrelationID), optional(2, m.CausationID), optional(3, m.CommandID)
}

// encodeUUID writes the canonical form of id (36 bytes) into dst.
func encodeUUID(dst []byte, id uuid.UUID) {
	hex.Encode(dst[0:8], id[:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], id[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], id[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], id[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:], id[10:])
}
