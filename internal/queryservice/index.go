package queryservice

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// Tables of the model.
const (
	tableResources = "resources"
	tablePosition  = "position"
)

// Index names that are not sort fields (the sort fields' indexes are named as api.OrderFields).
const (
	indexID             = "id"
	indexPolicy         = "policy_id"
	indexAccountConcept = "account_concept_id"
	indexMetadataKey    = "metadata_key"
	indexMetadataValue  = "metadata_kv"
	// indexText is the text index of q, kept beside memdb (textIndex).
	indexText = "text"
)

// sep ends a variable-length value in an index key, so that "a" sorts before "a-b" and a
// lookup of "a" does not find "ab". A value containing it at most adds candidates, which the
// filter's predicate then refuses.
const sep = 0x00

// keyIndex is a memdb indexer over keys computed from a row. memdb appends the row's primary
// key (its 16 id bytes) to the keys of a non-unique index, so an index's order is (key, id): a
// total order, which is what cursor paging relies on. Lookups pass the raw key bytes: FromArgs
// and PrefixFromArgs take one []byte.
type keyIndex[T any] struct {
	keys func(T) [][]byte
}

func (x keyIndex[T]) FromObject(raw any) (bool, [][]byte, error) {
	r, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("queryservice: index of %T given a %T", *new(T), raw)
	}
	keys := x.keys(r)
	return len(keys) > 0, keys, nil
}

func (keyIndex[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("queryservice: index lookup takes one key, got %d arguments", len(args))
	}
	k, ok := args[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("queryservice: index lookup takes a []byte key, got %T", args[0])
	}
	return k, nil
}

func (x keyIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) { return x.FromArgs(args...) }

// one wraps a single key.
func one(k []byte) [][]byte { return [][]byte{k} }

// stringKey is s followed by sep.
func stringKey(s string) []byte { return append([]byte(s), sep) }

// uint64Key is n in big-endian order, so that byte order is numeric order.
func uint64Key(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// metadataValueKey is the key of one metadata entry in the key=value index.
func metadataValueKey(k, v string) []byte {
	return append(append(stringKey(k), v...), sep)
}

// lowerHostname is the case-insensitive form of a host name filter (stored names are canonical,
// lower-case, already).
func lowerHostname(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// schema is the model's memdb schema: resources with one index per sort field and per filter
// field, and the model's position (trace's events are in the traceLog).
func schema() *memdb.DBSchema {
	resIndexes := map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: idIndex[*resource]{key: func(r *resource) []byte { return r.id[:] }}},
		indexPolicy: {Name: indexPolicy, AllowMissing: true, Indexer: keyIndex[*resource]{keys: func(r *resource) [][]byte {
			ps := r.state.Policies()
			out := make([][]byte, len(ps))
			for i, p := range ps {
				out[i] = p[:]
			}
			return out
		}}},
		indexAccountConcept: {Name: indexAccountConcept, Indexer: keyIndex[*resource]{keys: func(r *resource) [][]byte {
			id, _ := r.state.AccountConceptID()
			return one(id[:])
		}}},
		indexMetadataKey: {Name: indexMetadataKey, AllowMissing: true, Indexer: keyIndex[*resource]{keys: func(r *resource) [][]byte {
			md := r.state.Metadata()
			out := make([][]byte, 0, len(md))
			for k := range md {
				out = append(out, stringKey(k))
			}
			return out
		}}},
		indexMetadataValue: {Name: indexMetadataValue, AllowMissing: true, Indexer: keyIndex[*resource]{keys: func(r *resource) [][]byte {
			md := r.state.Metadata()
			out := make([][]byte, 0, len(md))
			for k, v := range md {
				out = append(out, metadataValueKey(k, v))
			}
			return out
		}}},
	}
	for _, f := range sortFields {
		resIndexes[f.name] = &memdb.IndexSchema{Name: f.name, Indexer: keyIndex[*resource]{keys: func(r *resource) [][]byte { return one(f.key(r)) }}}
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableResources: {Name: tableResources, Indexes: resIndexes},
		tablePosition: {Name: tablePosition, Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: idIndex[*position]{key: func(*position) []byte { return positionKey }}},
		}},
	}}
}

// idIndex is the primary index of a table: one key per row.
type idIndex[T any] struct {
	key func(T) []byte
}

func (x idIndex[T]) FromObject(raw any) (bool, []byte, error) {
	r, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("queryservice: index of %T given a %T", *new(T), raw)
	}
	return true, x.key(r), nil
}

func (idIndex[T]) FromArgs(args ...any) ([]byte, error) { return keyIndex[T]{}.FromArgs(args...) }

func (idIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) { return keyIndex[T]{}.FromArgs(args...) }

// positionKey is the key of the position table's only row.
var positionKey = []byte{0}
