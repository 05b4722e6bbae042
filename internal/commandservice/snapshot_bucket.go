package commandservice

import (
	"context"
	"fmt"

	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go/jetstream"
)

// openSnapshotStore opens the snapshot bucket, creating it (with the event stream's replicas) if
// it does not exist.
func openSnapshotStore(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*jetstore.SnapshotStore, error) {
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Snapshots of aggregates evicted from the command service's cache (state and command-id index)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("commandservice: snapshot bucket %s: %w", bucket, err)
	}
	return jetstore.OpenSnapshotStore(kv)
}

// streamCreated returns the creation time of the stream in unix nanoseconds, which tells one
// incarnation of a stream name from another.
func streamCreated(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	stream, err := jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, name) })
	if err != nil {
		return 0, fmt.Errorf("commandservice: stream %s: %w", name, unavailable(err))
	}
	return uint64(stream.CachedInfo().Created.UnixNano()), nil
}
