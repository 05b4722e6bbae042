package computeresource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// referenceEncodeEvent is EncodeEvent with encoding/json alone, as it was before
// appendPayload.
func referenceEncodeEvent(e Event) (EncodedEvent, error) {
	if e == nil {
		return EncodedEvent{}, fmt.Errorf("%w: nil event", ErrMalformedEvent)
	}
	if err := validateEvent(e); err != nil {
		return EncodedEvent{}, err
	}
	data, err := marshalPayload(e)
	if err != nil {
		return EncodedEvent{}, fmt.Errorf("%w: encoding %s: %v", ErrMalformedEvent, e.EventType(), err)
	}
	version, _ := CurrentVersion(e.EventType())
	return EncodedEvent{Type: e.EventType(), Version: version, Data: data}, nil
}

// fuzzEvent builds an event of one of the 12 types from fuzz input: strings go everywhere a
// string can (host names, types and statuses included, unchecked, to exercise the escaping),
// ids come from seed, and flags drop the optional ids and hardware fields.
func fuzzEvent(kind uint8, seed uint64, s1, s2, s3 string, sec int64, nsec uint32, flags uint8) Event {
	id := func(i uint64) uuid.UUID {
		if flags&0x80 != 0 && i == 2 {
			return uuid.Nil // an invalid event: no correlation id
		}
		var name [8]byte
		binary.BigEndian.PutUint64(name[:], seed+i)
		return uuid.NewSHA1(uuid.NameSpaceOID, name[:])
	}
	m := EventMeta{EventID: id(0), AggregateID: id(1), CorrelationID: id(2), CommandID: id(3), CausationID: id(4),
		Timestamp: time.Unix(sec, int64(nsec%1e9)).In(time.FixedZone("", int(int8(flags))*900))}
	if flags&1 != 0 {
		m.CommandID = uuid.Nil
	}
	if flags&2 != 0 {
		m.CausationID = uuid.Nil
	}
	opt := func(bit uint8, s string) *string {
		if flags&bit != 0 {
			return nil
		}
		return &s
	}
	switch kind % 12 {
	case 0:
		return ResourceRegistered{EventMeta: m, Hostname: Hostname{name: s1}, Type: ResourceType{name: s2}}
	case 1:
		return OrganizationAssigned{EventMeta: m, OrganizationID: OrganizationID(id(5))}
	case 2:
		return LocationAssigned{EventMeta: m, LocationID: LocationID(id(5))}
	case 3:
		return OwnerAssigned{EventMeta: m, OwnerID: PersonID(id(5))}
	case 4:
		return PolicyAdded{EventMeta: m, PolicyID: PolicyID(id(5))}
	case 5:
		return PolicyRemoved{EventMeta: m, PolicyID: PolicyID(id(5))}
	case 6:
		return AccountConceptAssigned{EventMeta: m, ConceptID: AccountConceptID(id(5))}
	case 7:
		return AccountConceptCleared{EventMeta: m}
	case 8:
		return HardwareDetailsSet{EventMeta: m, Manufacturer: opt(4, s1), Model: opt(8, s2), SerialNumber: opt(16, s3)}
	case 9:
		return AssetTagAssigned{EventMeta: m, AssetTag: s1}
	case 10:
		return MetadataUpdated{EventMeta: m, Key: s1, Value: s2}
	default:
		return StatusChanged{EventMeta: m, From: Status{name: s1}, To: Status{name: s2}}
	}
}

// FuzzEncodeEvent checks that EncodeEvent, with its hand-written encoder, gives the bytes and
// errors of the encoding/json encoder it replaced, for events of every type with any strings
// and times (years beyond 9999 included, which only the reference path refuses).
func FuzzEncodeEvent(f *testing.F) {
	for kind := range uint8(12) {
		f.Add(kind, uint64(kind), "web-01.example.com", "virtual_machine", "SN-1", int64(1768816800), uint32(123456789), uint8(0))
	}
	f.Add(uint8(10), uint64(1), "k", "R&D <\"lab\"> ünïcode \u2028\u2029 \x00\x1f\b\f\n\r\t\\ \xff", "", int64(0), uint32(0), uint8(3))
	f.Add(uint8(8), uint64(2), "", "a\"b", "\xed\xa0\x80", int64(-62135596800), uint32(1), uint8(4))
	f.Add(uint8(9), uint64(3), "tag", "", "", int64(253402300800), uint32(0), uint8(0))      // year 10000
	f.Add(uint8(9), uint64(3), "tag", "", "", int64(-62167219201), uint32(0), uint8(0))      // year -1
	f.Add(uint8(11), uint64(4), "active", "", "", int64(1768816800), uint32(0), uint8(0x80)) // no correlation id
	f.Add(uint8(0), uint64(5), "", "vm", "", int64(1768816800), uint32(0), uint8(0))         // no host name
	f.Fuzz(func(t *testing.T, kind uint8, seed uint64, s1, s2, s3 string, sec int64, nsec uint32, flags uint8) {
		e := fuzzEvent(kind, seed, s1, s2, s3, sec, nsec, flags)
		got, err := EncodeEvent(e)
		want, wantErr := referenceEncodeEvent(e)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || errors.Is(err, ErrMalformedEvent) != errors.Is(wantErr, ErrMalformedEvent) {
			t.Fatalf("%#v: error %v, reference %v", e, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%#v:\n got %+v %s\nwant %+v %s", e, got, got.Data, want, want.Data)
		}
	})
}

// TestAppendPayloadFallsBack checks that the times time.Time cannot encode are left to the
// reference encoder, so that EncodeEvent's error stays the same.
func TestAppendPayloadFallsBack(t *testing.T) {
	e := fuzzEvent(9, 1, "tag", "", "", 253402300800, 0, 0)
	if _, ok := appendPayload(nil, e); ok {
		t.Fatal("appendPayload encoded a timestamp of year 10000")
	}
	if _, err := EncodeEvent(e); !errors.Is(err, ErrMalformedEvent) {
		t.Fatalf("EncodeEvent of a timestamp of year 10000: %v, want ErrMalformedEvent", err)
	}
	if _, ok := appendPayload(nil, fuzzEvent(9, 1, "tag", "", "", 0, 0, 0)); !ok {
		t.Fatal("appendPayload refused an event of 1970")
	}
}

// BenchmarkEncodeEvent encodes a PolicyAdded with the hand-written encoder and with the
// reference one.
func BenchmarkEncodeEvent(b *testing.B) {
	e := fuzzEvent(4, 1, "", "", "", 1768816800, 123456789, 0)
	for _, bm := range []struct {
		name   string
		encode func(Event) (EncodedEvent, error)
	}{{"append", EncodeEvent}, {"reference", referenceEncodeEvent}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.encode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
