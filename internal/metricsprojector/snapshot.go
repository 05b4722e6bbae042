package metricsprojector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"strconv"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotSchema is the version of the snapshot encoding. A snapshot of another version is
// ignored (the state is rebuilt from the stream), so changing the encoding needs no migration.
const SnapshotSchema = 2

// SnapshotObject is the object's name in the bucket.
const SnapshotObject = "state"

// Object metadata keys, readable without decoding the snapshot.
const (
	metaSchema   = "schema"
	metaSequence = "sequence"
)

// ErrSnapshotSchema says that the stored snapshot has another schema version.
var ErrSnapshotSchema = errors.New("metricsprojector: snapshot of another schema version")

// snapshotV2 is the encoded state: columns rather than a slice of structs, and names of statuses
// and types kept once in a dictionary, so that a million resources cost about 18 bytes each.
// The fleet counts are rebuilt from the resources on load, so they cannot disagree with them,
// except those of decommissioned resources, which the state keeps as counts only.
type snapshotV2 struct {
	Schema      int
	Sequence    uint64
	Statuses    []string
	Types       []string
	IDs         []byte  // 16 bytes per resource
	Status      []uint8 // index in Statuses, per resource
	Type        []uint8 // index in Types, per resource
	Events      map[string]uint64
	Transitions []transitionCount
	// Decommissioned counts the decommissioned resources per type, indexed as Types.
	Decommissioned []int
}

type transitionCount struct {
	From, To string
	N        uint64
}

// encodeSnapshot writes s as gzip-compressed gob.
func encodeSnapshot(s *State) ([]byte, error) {
	snap := snapshotV2{Schema: SnapshotSchema, Sequence: s.sequence, Events: s.events,
		IDs: make([]byte, 0, 16*len(s.resources)), Status: make([]uint8, 0, len(s.resources)), Type: make([]uint8, 0, len(s.resources))}
	statusIdx, typeIdx := map[cr.Status]uint8{}, map[cr.ResourceType]uint8{}
	for _, st := range cr.Statuses() {
		statusIdx[st] = uint8(len(snap.Statuses))
		snap.Statuses = append(snap.Statuses, st.String())
	}
	for _, rt := range cr.ResourceTypes() {
		typeIdx[rt] = uint8(len(snap.Types))
		snap.Types = append(snap.Types, rt.String())
		snap.Decommissioned = append(snap.Decommissioned, s.fleet[FleetKey{Status: cr.StatusDecommissioned, Type: rt}])
	}
	if len(snap.Types) > 255 {
		return nil, fmt.Errorf("metricsprojector: %d resource types do not fit the snapshot's byte index", len(snap.Types))
	}
	for id, r := range s.resources {
		snap.IDs = append(snap.IDs, id[:]...)
		snap.Status = append(snap.Status, statusIdx[r.Status])
		snap.Type = append(snap.Type, typeIdx[r.Type])
	}
	for t, n := range s.transitions {
		snap.Transitions = append(snap.Transitions, transitionCount{From: t.From.String(), To: t.To.String(), N: n})
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := gob.NewEncoder(zw).Encode(&snap); err != nil {
		return nil, fmt.Errorf("metricsprojector: encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("metricsprojector: compress snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeSnapshot reads a snapshot written by encodeSnapshot.
func decodeSnapshot(data []byte) (*State, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("metricsprojector: decompress snapshot: %w", err)
	}
	var snap snapshotV2
	if err := gob.NewDecoder(zr).Decode(&snap); err != nil {
		return nil, fmt.Errorf("metricsprojector: decode snapshot: %w", err)
	}
	if snap.Schema != SnapshotSchema {
		return nil, fmt.Errorf("%w: %d, this code reads %d", ErrSnapshotSchema, snap.Schema, SnapshotSchema)
	}
	n := len(snap.Status)
	if len(snap.IDs) != 16*n || len(snap.Type) != n || len(snap.Decommissioned) != len(snap.Types) {
		return nil, fmt.Errorf("metricsprojector: snapshot columns disagree: %d id bytes, %d statuses, %d types, %d decommissioned counts of %d types",
			len(snap.IDs), n, len(snap.Type), len(snap.Decommissioned), len(snap.Types))
	}
	statuses := make([]cr.Status, len(snap.Statuses))
	for i, name := range snap.Statuses {
		if statuses[i], err = cr.ParseStatus(name); err != nil {
			return nil, fmt.Errorf("metricsprojector: snapshot: %w", err)
		}
	}
	types := make([]cr.ResourceType, len(snap.Types))
	for i, name := range snap.Types {
		if types[i], err = cr.ParseResourceType(name); err != nil {
			return nil, fmt.Errorf("metricsprojector: snapshot: %w", err)
		}
	}
	s := NewState()
	s.sequence = snap.Sequence
	s.resources = make(map[uuid.UUID]Resource, n)
	for i := range n {
		si, ti := int(snap.Status[i]), int(snap.Type[i])
		if si >= len(statuses) || ti >= len(types) {
			return nil, fmt.Errorf("metricsprojector: snapshot resource %d: status %d or type %d out of range", i, si, ti)
		}
		id := uuid.UUID(snap.IDs[16*i : 16*i+16])
		s.setResource(id, Resource{}, Resource{Status: statuses[si], Type: types[ti]})
	}
	for i, count := range snap.Decommissioned {
		if count > 0 {
			s.fleet[FleetKey{Status: cr.StatusDecommissioned, Type: types[i]}] += count
		}
	}
	for typ, v := range snap.Events {
		s.events[typ] = v
	}
	for _, t := range snap.Transitions {
		from, err1 := cr.ParseStatus(t.From)
		to, err2 := cr.ParseStatus(t.To)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("metricsprojector: snapshot transition: %w", err)
		}
		s.transitions[Transition{From: from, To: to}] = t.N
	}
	return s, nil
}

// snapshots keeps the state in a JetStream Object Store bucket. A KV value would be bounded by
// the server's max payload (1 MB by default), which a large fleet outgrows; an object is chunked.
// Put publishes the object's metadata after all its chunks, so a crash during a write leaves the
// previous snapshot in force.
type snapshots struct {
	obs jetstream.ObjectStore
}

func openSnapshots(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*snapshots, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: "Snapshots of the metrics projector's state with the stream sequence they stand for.",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("metricsprojector: snapshot bucket %s: %w", bucket, err)
	}
	return &snapshots{obs: obs}, nil
}

// save writes s and returns the encoded size.
func (b *snapshots) save(ctx context.Context, s *State) (int, error) {
	data, err := encodeSnapshot(s)
	if err != nil {
		return 0, err
	}
	_, err = b.obs.Put(ctx, jetstream.ObjectMeta{
		Name:     SnapshotObject,
		Metadata: map[string]string{metaSchema: strconv.Itoa(SnapshotSchema), metaSequence: strconv.FormatUint(s.sequence, 10)},
	}, bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("metricsprojector: write snapshot at sequence %d: %w", s.sequence, err)
	}
	return len(data), nil
}

// load returns the stored state and its encoded size, or (nil, 0, nil) when there is none. A
// snapshot of another schema version is ErrSnapshotSchema; one that does not decode is an error
// wrapping errUnreadableSnapshot. Both mean: rebuild from the stream. Other errors are transient.
func (b *snapshots) load(ctx context.Context) (*State, int, error) {
	info, err := b.obs.GetInfo(ctx, SnapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("metricsprojector: snapshot info: %w", err)
	}
	if v := info.Metadata[metaSchema]; v != strconv.Itoa(SnapshotSchema) {
		return nil, 0, fmt.Errorf("%w: object says %q, this code reads %d", ErrSnapshotSchema, v, SnapshotSchema)
	}
	res, err := b.obs.Get(ctx, SnapshotObject)
	if err != nil {
		return nil, 0, fmt.Errorf("metricsprojector: read snapshot: %w", err)
	}
	defer res.Close()
	data, err := io.ReadAll(res)
	if err != nil {
		return nil, 0, fmt.Errorf("metricsprojector: read snapshot: %w", err)
	}
	s, err := decodeSnapshot(data)
	if err != nil {
		if errors.Is(err, ErrSnapshotSchema) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("%w: %w", errUnreadableSnapshot, err)
	}
	return s, len(data), nil
}

var errUnreadableSnapshot = errors.New("metricsprojector: unreadable snapshot")
