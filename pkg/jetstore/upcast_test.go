package jetstore_test

import (
	"errors"
	"testing"

	"github.com/cim-infra/registry/pkg/jetstore"
)

// TestUpcastersOutsideAStore: the registry a Store applies on read upcasts an event a consumer
// received the same way, chains versions, leaves other types and the latest version alone, and
// reports a failing upcaster without changing the event.
func TestUpcastersOutsideAStore(t *testing.T) {
	t.Parallel()
	reg, err := jetstore.NewUpcasters(
		jetstore.Upcaster{EventType: "Renamed", FromVersion: 2, Upcast: func(b []byte) ([]byte, error) { return append(b, "+v3"...), nil }},
		jetstore.Upcaster{EventType: "Renamed", FromVersion: 1, Upcast: func(b []byte) ([]byte, error) {
			if string(b) == "fail" {
				return nil, errors.New("cannot read")
			}
			return append(b, "+v2"...), nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		typ      string
		version  int
		data     string
		wantV    int
		wantData string
	}{
		{"Renamed", 1, "a", 3, "a+v2+v3"},
		{"Renamed", 2, "b", 3, "b+v3"},
		{"Renamed", 3, "c", 3, "c"},
		{"Other", 1, "d", 1, "d"},
	} {
		e := jetstore.RecordedEvent{Event: jetstore.Event{Type: tt.typ, SchemaVersion: tt.version, Data: []byte(tt.data)}}
		if err := reg.Upcast(&e); err != nil || e.SchemaVersion != tt.wantV || string(e.Data) != tt.wantData {
			t.Errorf("%s v%d %q: v%d %q, %v; want v%d %q", tt.typ, tt.version, tt.data, e.SchemaVersion, e.Data, err, tt.wantV, tt.wantData)
		}
	}

	e := jetstore.RecordedEvent{Event: jetstore.Event{Type: "Renamed", SchemaVersion: 1, Data: []byte("fail")}, Sequence: 9}
	err = reg.Upcast(&e)
	var uerr *jetstore.UpcastError
	if !errors.As(err, &uerr) || !errors.Is(err, jetstore.ErrUpcast) || uerr.Version != 1 || uerr.Sequence != 9 {
		t.Fatalf("failing upcaster: %v", err)
	}
	if e.SchemaVersion != 1 || string(e.Data) != "fail" {
		t.Fatalf("a failed upcast changed the event to v%d %q", e.SchemaVersion, e.Data)
	}

	var none *jetstore.Upcasters
	e = jetstore.RecordedEvent{Event: jetstore.Event{Type: "Renamed", SchemaVersion: 1, Data: []byte("x")}}
	if err := none.Upcast(&e); err != nil || e.SchemaVersion != 1 || string(e.Data) != "x" {
		t.Fatalf("nil registry: v%d %q, %v", e.SchemaVersion, e.Data, err)
	}
	if _, err := jetstore.NewUpcasters(jetstore.Upcaster{EventType: "X", FromVersion: 1}); !errors.Is(err, jetstore.ErrInvalidOption) {
		t.Fatalf("upcaster without function: %v", err)
	}
}
