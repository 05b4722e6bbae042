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

// upcasters is the registry of upcasters by (event type, from version).
type upcasters map[upcastKey]func([]byte) ([]byte, error)

func newUpcasters(list []Upcaster) (upcasters, error) {
	reg := make(upcasters, len(list))
	for _, u := range list {
		k := upcastKey{u.EventType, u.FromVersion}
		if _, dup := reg[k]; dup {
			return nil, fmt.Errorf("%w: two upcasters for %s from version %d", ErrInvalidOption, u.EventType, u.FromVersion)
		}
		reg[k] = u.Upcast
	}
	return reg, nil
}

// apply upcasts e in place to the latest version the registry knows.
func (reg upcasters) apply(e *RecordedEvent) error {
	for {
		f, ok := reg[upcastKey{e.Type, e.SchemaVersion}]
		if !ok {
			return nil
		}
		data, err := f(e.Data)
		if err != nil {
			return &UpcastError{EventType: e.Type, Version: e.SchemaVersion, Sequence: e.Sequence, Err: err}
		}
		e.Data = data
		e.SchemaVersion++
	}
}
