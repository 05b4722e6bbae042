package jetstore

import "fmt"

// Upcaster turns the Data of one event type from one schema version to the next
// (FromVersion -> FromVersion+1). Upcasters chain: v1 -> v2 -> v3. The domain supplies them; the
// store applies them on read, so that old events need never be rewritten.
type Upcaster struct {
	// EventType is the Event.Type it applies to.
	EventType string
	// FromVersion is the schema version it reads; it writes FromVersion+1.
	FromVersion int
	// Upcast converts the data.
	Upcast func(data []byte) ([]byte, error)
}

func (u Upcaster) validate() error {
	switch {
	case u.EventType == "":
		return fmt.Errorf("%w: upcaster with empty event type", ErrInvalidOption)
	case u.FromVersion < 1:
		return fmt.Errorf("%w: upcaster for %s from version %d, want 1 or more", ErrInvalidOption, u.EventType, u.FromVersion)
	case u.Upcast == nil:
		return fmt.Errorf("%w: upcaster for %s v%d has no function", ErrInvalidOption, u.EventType, u.FromVersion)
	}
	return nil
}

type upcastKey struct {
	eventType string
	version   int
}

// Upcasters is a registry of upcasters, at most one per (event type, from version). A Store
// applies its own (WithUpcasters) to every event it reads; a reader of events that do not come
// through a Store, such as a consumer, applies the same registry with Upcast, so that every
// reader sees an event at the same version. A nil *Upcasters upcasts nothing.
type Upcasters struct {
	byKey map[upcastKey]func([]byte) ([]byte, error)
}

// NewUpcasters returns the registry of list. An invalid upcaster, or two for the same event
// type and version, is an error that wraps ErrInvalidOption.
func NewUpcasters(list ...Upcaster) (*Upcasters, error) {
	reg := &Upcasters{byKey: make(map[upcastKey]func([]byte) ([]byte, error), len(list))}
	for _, u := range list {
		if err := u.validate(); err != nil {
			return nil, err
		}
		k := upcastKey{u.EventType, u.FromVersion}
		if _, dup := reg.byKey[k]; dup {
			return nil, fmt.Errorf("%w: two upcasters for %s from version %d", ErrInvalidOption, u.EventType, u.FromVersion)
		}
		reg.byKey[k] = u.Upcast
	}
	return reg, nil
}

// Upcast converts e in place to the latest version the registry knows for its type: its Data
// and SchemaVersion change, nothing else. A failing upcaster is an *UpcastError, and e is left
// as it was.
func (r *Upcasters) Upcast(e *RecordedEvent) error {
	if r == nil {
		return nil
	}
	data, version := e.Data, e.SchemaVersion
	for {
		f, ok := r.byKey[upcastKey{e.Type, version}]
		if !ok {
			e.Data, e.SchemaVersion = data, version
			return nil
		}
		var err error
		if data, err = f(data); err != nil {
			return &UpcastError{EventType: e.Type, Version: version, Sequence: e.Sequence, Err: err}
		}
		version++
	}
}
