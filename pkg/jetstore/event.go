package jetstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers written on every event message, so that consumers can route and filter without decoding
// the payload. Values are plain strings; the schema version is a decimal integer.
const (
	// HeaderEventID carries Event.ID. It is JetStream's de-duplication header (Nats-Msg-Id).
	HeaderEventID = jetstream.MsgIDHeader
	// HeaderEventType carries Event.Type.
	HeaderEventType = "Cim-Event-Type"
	// HeaderEventVersion carries Event.SchemaVersion as written (before any upcast).
	HeaderEventVersion = "Cim-Event-Version"
	// HeaderCorrelationID carries Event.CorrelationID (omitted when empty).
	HeaderCorrelationID = "Cim-Correlation-Id"
	// HeaderCausationID carries Event.CausationID (omitted when empty).
	HeaderCausationID = "Cim-Causation-Id"
	// HeaderCommandID carries Event.CommandID (omitted when empty).
	HeaderCommandID = "Cim-Command-Id"
	// HeaderAggregateType carries AggregateRef.Type.
	HeaderAggregateType = "Cim-Aggregate-Type"
	// HeaderAggregateID carries AggregateRef.ID.
	HeaderAggregateID = "Cim-Aggregate-Id"
)

// MaxEventIDLength bounds the length in bytes of Event.ID.
const MaxEventIDLength = 256

// Event is one domain event to append.
type Event struct {
	// ID identifies the event uniquely (e.g. a UUID). Required. It becomes the message's
	// Nats-Msg-Id, so that a retried append is recognised as the same write.
	ID string
	// Type names the event, e.g. "OrderPlaced". Required.
	Type string
	// SchemaVersion is the version of Data's encoding for this Type, 1 or more. On read it is the
	// version after upcasting.
	SchemaVersion int
	// Data is the encoded event; the store does not look inside.
	Data []byte
	// CorrelationID, CausationID and CommandID trace the event to the request and command that
	// caused it. Optional.
	CorrelationID string
	CausationID   string
	CommandID     string
	// Headers are extra message headers, optional. Names must not start with "Nats-" or "Cim-"
	// (the server's and the store's), nor be Status or Description (NATS clients read those as
	// the server's status on a message without data), in any case; neither names nor values may
	// contain control characters.
	Headers map[string]string
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	Event
	// Aggregate is the aggregate the event belongs to.
	Aggregate AggregateRef
	// Sequence is the event's stream sequence. The last one of an aggregate is the expected
	// sequence of its next append.
	Sequence uint64
	// Time is the server's time of the write.
	Time time.Time
}

// validate checks that e can be written as a message.
func (e *Event) validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: empty id", ErrInvalidEvent)
	case len(e.ID) > MaxEventIDLength:
		return fmt.Errorf("%w: id %.32q... longer than %d bytes", ErrInvalidEvent, e.ID, MaxEventIDLength)
	case strings.IndexFunc(e.ID, notPrintable) >= 0:
		return fmt.Errorf("%w: id %q contains white space or control characters", ErrInvalidEvent, e.ID)
	case e.Type == "":
		return fmt.Errorf("%w: event %s: empty type", ErrInvalidEvent, e.ID)
	case strings.IndexFunc(e.Type, notPrintable) >= 0:
		return fmt.Errorf("%w: event %s: type %q contains white space or control characters", ErrInvalidEvent, e.ID, e.Type)
	case e.SchemaVersion < 1:
		return fmt.Errorf("%w: event %s: schema version %d, want 1 or more", ErrInvalidEvent, e.ID, e.SchemaVersion)
	}
	for _, f := range [...]struct{ name, value string }{
		{"correlation id", e.CorrelationID}, {"causation id", e.CausationID}, {"command id", e.CommandID},
	} {
		if strings.IndexFunc(f.value, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: event %s: %s %q contains control characters", ErrInvalidEvent, e.ID, f.name, f.value)
		}
	}
	for k, v := range e.Headers {
		switch {
		case k == "" || strings.IndexFunc(k, notPrintable) >= 0 || strings.ContainsRune(k, ':'):
			return fmt.Errorf("%w: event %s: header name %q", ErrInvalidEvent, e.ID, k)
		case reservedHeader(k) || statusHeader(k):
			return fmt.Errorf("%w: event %s: header name %q is reserved", ErrInvalidEvent, e.ID, k)
		case strings.IndexFunc(v, unicode.IsControl) >= 0:
			return fmt.Errorf("%w: event %s: header %s value %q contains control characters", ErrInvalidEvent, e.ID, k, v)
		}
	}
	return nil
}

func notPrintable(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// reservedHeader reports whether k is a header name of the server or the store: not a caller's
// header, on write or on read.
func reservedHeader(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "nats-") || strings.HasPrefix(k, "cim-")
}

// statusHeader reports whether k is a header name that NATS clients read as the server's
// status on a message without data: nats.go's consumers skip such a message (Status 100) or end
// a fetch at it (404, 408, 409). The store tells them apart on read (isStatus); a consumer of
// the stream may not, so Append refuses them.
func statusHeader(k string) bool {
	return strings.EqualFold(k, "Status") || strings.EqualFold(k, "Description")
}

// EventMessage returns the message Append publishes for e alone on agg's subject: the same
// subject, headers and data, but without Append's expectation of the aggregate's last sequence,
// so publishing it checks no concurrency and resolves no duplicate. It is for a writer that owns
// the whole history of its aggregates, such as one loading a new stream in bulk with
// asynchronous publishes; readers cannot tell its events from appended ones. An invalid
// aggregate or event is refused as Append refuses it.
func (s *Store) EventMessage(agg AggregateRef, e Event) (*nats.Msg, error) {
	subject, err := s.Subject(agg)
	if err != nil {
		return nil, err
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e.message(subject, agg), nil
}

// message encodes e as a message on subject for agg. The store's own headers share one
// array of values rather than one slice each: an append is on every command's path.
func (e *Event) message(subject string, agg AggregateRef) *nats.Msg {
	h := make(nats.Header, 9+len(e.Headers))
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	values := make([]string, 0, 8)
	set := func(k, v string) {
		values = append(values, v)
		// Capacity 1: whoever appends to one value gets an array of its own.
		h[k] = values[len(values)-1 : len(values) : len(values)]
	}
	set(HeaderEventID, e.ID)
	set(HeaderEventType, e.Type)
	set(HeaderEventVersion, strconv.Itoa(e.SchemaVersion))
	set(HeaderAggregateType, agg.Type)
	set(HeaderAggregateID, agg.ID)
	if e.CorrelationID != "" {
		set(HeaderCorrelationID, e.CorrelationID)
	}
	if e.CausationID != "" {
		set(HeaderCausationID, e.CausationID)
	}
	if e.CommandID != "" {
		set(HeaderCommandID, e.CommandID)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data}
}

// decodeEvent turns a stored message into a RecordedEvent (before upcasting).
func decodeEvent(m *jetstream.RawStreamMsg) (RecordedEvent, error) {
	h := m.Header
	v, err := strconv.Atoi(h.Get(HeaderEventVersion))
	if err != nil || h.Get(HeaderEventID) == "" || h.Get(HeaderEventType) == "" {
		return RecordedEvent{}, fmt.Errorf("%w: message %d on %s lacks %s, %s or %s", ErrCorruptEvent,
			m.Sequence, m.Subject, HeaderEventID, HeaderEventType, HeaderEventVersion)
	}
	r := RecordedEvent{
		Event: Event{
			ID:            h.Get(HeaderEventID),
			Type:          h.Get(HeaderEventType),
			SchemaVersion: v,
			Data:          m.Data,
			CorrelationID: h.Get(HeaderCorrelationID),
			CausationID:   h.Get(HeaderCausationID),
			CommandID:     h.Get(HeaderCommandID),
		},
		Aggregate: AggregateRef{Type: h.Get(HeaderAggregateType), ID: h.Get(HeaderAggregateID)},
		Sequence:  m.Sequence,
		Time:      m.Time,
	}
	for k, vs := range h {
		if reservedHeader(k) || len(vs) == 0 {
			continue
		}
		if r.Headers == nil {
			r.Headers = make(map[string]string)
		}
		r.Headers[k] = vs[0]
	}
	return r, nil
}
