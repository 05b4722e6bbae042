package computeresource

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// randomStates returns the states reached along seeded random histories (the property test's
// generator), the zero state included.
func randomStates(t testing.TB, sequences, length int) []State {
	t.Helper()
	states := []State{{}}
	for seq := range sequences {
		g := &commandGen{rng: rand.New(rand.NewPCG(uint64(seq), 7)), id: uid(fmt.Sprint("codec", seq))}
		var s State
		for range length {
			events, err := Decide(s, g.next())
			if err != nil {
				continue
			}
			s = Fold(s, events...)
			states = append(states, s)
		}
	}
	return states
}

// TestStateBinaryRoundTrip checks that every state reached by random histories decodes to an
// equal state, and that the encoding is deterministic.
func TestStateBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	states := randomStates(t, 100, 60)
	withMetadata, withPolicies, withHardware := 0, 0, 0
	for i, s := range states {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		var got State
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if !got.Equal(s) {
			t.Fatalf("state %d: decoded %+v, want %+v", i, got, s)
		}
		again, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("state %d: re-encoding differs (%v)", i, err)
		}
		if len(s.metadata) > 1 {
			withMetadata++
		}
		if len(s.policies) > 1 {
			withPolicies++
		}
		if _, ok := s.Manufacturer(); ok {
			withHardware++
		}
	}
	// The histories must reach the parts of the state the format has to carry.
	if withMetadata == 0 || withPolicies == 0 || withHardware == 0 {
		t.Fatalf("states with several metadata keys %d, several policies %d, hardware %d: the generator misses a part", withMetadata, withPolicies, withHardware)
	}
}

// TestStateBinaryRefusesCorruption: every truncation, a flipped format byte, trailing bytes and
// values the domain would refuse are errors wrapping ErrCorruptState.
func TestStateBinaryRefusesCorruption(t *testing.T) {
	t.Parallel()
	var s State
	for _, st := range randomStates(t, 20, 40) {
		if len(st.metadata) > 1 && len(st.policies) > 1 {
			s = st
			break
		}
	}
	if !s.Registered() {
		t.Fatal("no state with metadata and policies")
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, data []byte) {
		t.Helper()
		var got State
		err := got.UnmarshalBinary(data)
		if !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: err = %v, want ErrCorruptState", name, err)
		}
		if !got.Equal(State{}) {
			t.Errorf("%s: the target was modified", name)
		}
	}
	for n := range len(b) {
		check(fmt.Sprintf("truncated to %d bytes", n), b[:n])
	}
	check("trailing byte", append(bytes.Clone(b), 0))
	bad := bytes.Clone(b)
	bad[0] = 2
	check("format 2", bad)

	// A hostname the domain refuses: the length-prefixed string after the id.
	bad = bytes.Clone(b)
	bad[1+16+1] = '-'
	check("bad hostname", bad)
	// An unknown status: change a letter of it.
	host := s.hostname.name
	typ := s.resourceType.name
	bad = bytes.Clone(b)
	bad[1+16+1+len(host)+1+len(typ)+1] = 'X'
	check("bad status", bad)
}

func FuzzStateUnmarshalBinary(f *testing.F) {
	for _, s := range randomStates(f, 10, 30) {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s State
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes to the same state.
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again State
		if err := again.UnmarshalBinary(b); err != nil || !again.Equal(s) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}
