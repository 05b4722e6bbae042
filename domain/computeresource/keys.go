package computeresource

import "strings"

// Unique keys: among the resources that are not decommissioned, no two have the same hostname
// and no two carry the same asset tag. Whether a key is free is not state of one resource: the
// store referees it. The domain says which keys a resource holds, and so which keys the events
// of a decision claim and release; the service passes them to the store with the events.

// KeySpace names a set of values of which each is held by at most one live resource.
type KeySpace string

// The key spaces of a compute resource.
const (
	// KeySpaceHostname holds hostnames, in canonical (lower-case) form.
	KeySpaceHostname KeySpace = "hostname"
	// KeySpaceAssetTag holds asset tags, in lower case: "AT-1" and "at-1" are one tag, as a
	// label read off a machine is one tag whatever the case it was typed in.
	KeySpaceAssetTag KeySpace = "asset_tag"
)

// Key is one unique value: a space and a key in it.
type Key struct {
	Space KeySpace
	Value string
}

// KeyChange is a key that a decision claims, or releases (Release true).
type KeyChange struct {
	Key
	Release bool
}

// Keys returns the keys that a resource in state s holds: its hostname and its asset tag, if
// it has one, while it is registered and not decommissioned; none otherwise.
func Keys(s State) []Key {
	if !s.Registered() || s.status == StatusDecommissioned {
		return nil
	}
	keys := []Key{{Space: KeySpaceHostname, Value: s.hostname.String()}}
	if s.assetTag != "" {
		keys = append(keys, Key{Space: KeySpaceAssetTag, Value: strings.ToLower(s.assetTag)})
	}
	return keys
}

// KeyChanges returns the keys that events, decided against state before, claim and release:
// the keys of the state after them that before did not hold are claimed, the keys before held
// that the state after does not are released. So registering claims the hostname, assigning
// an asset tag claims it and releases the one it replaces, and decommissioning releases the
// hostname and the asset tag. Releases come first, then claims, each in the order of Keys.
func KeyChanges(before State, events []Event) []KeyChange {
	was, is := Keys(before), Keys(Fold(before, events...))
	var changes []KeyChange
	for _, k := range was {
		if !containsKey(is, k) {
			changes = append(changes, KeyChange{Key: k, Release: true})
		}
	}
	for _, k := range is {
		if !containsKey(was, k) {
			changes = append(changes, KeyChange{Key: k})
		}
	}
	return changes
}

func containsKey(keys []Key, k Key) bool {
	for _, have := range keys {
		if have == k {
			return true
		}
	}
	return false
}
