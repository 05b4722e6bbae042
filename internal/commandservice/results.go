package commandservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cim-infra/registry/internal/jsx"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// results records, in a JetStream key-value bucket, the result of every command that changed
// nothing, under "<aggregate id>.<command id>", for the bucket's TTL. Such a command leaves no
// event, so without this record a retry would be decided again, and would write if the state
// had changed meanwhile.
type results struct {
	kv jetstream.KeyValue
}

// storedResult is the recorded form of a commandResult.
type storedResult struct {
	Version    uint64    `json:"version"`
	RecordedAt time.Time `json:"recorded_at"`
}

// openResults creates the bucket if it does not exist.
func openResults(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ttl time.Duration) (*results, error) {
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Results of commands that changed nothing, so that their retries get the same reply",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("commandservice: results bucket %s: %w", bucket, err)
	}
	return &results{kv: kv}, nil
}

// openBucket looks the key-value bucket up, or creates it with cfg if it does not exist. An
// existing bucket is used as it is: the service may create a stream but not update one.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	// Every step may meet a bucket another instance is creating at this moment, which has no
	// leader yet and leaves requests unanswered: jsx.Answered retries with short attempts.
	kv, err := jsx.Answered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) })
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = jsx.Answered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.CreateKeyValue(ctx, cfg) })
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = jsx.Answered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) })
		}
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return kv, nil
}

func resultKey(aggregate, command uuid.UUID) string {
	return aggregate.String() + "." + command.String()
}

// get returns the recorded result of the command, if any.
func (r *results) get(ctx context.Context, aggregate, command uuid.UUID) (commandResult, bool, error) {
	entry, err := r.kv.Get(ctx, resultKey(aggregate, command))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return commandResult{}, false, nil
	}
	if err != nil {
		return commandResult{}, false, fmt.Errorf("read the result of command %s: %w", command, unavailable(err))
	}
	var sr storedResult
	if err := json.Unmarshal(entry.Value(), &sr); err != nil {
		return commandResult{}, false, fmt.Errorf("result of command %s in bucket %s: %w", command, entry.Bucket(), err)
	}
	return commandResult{version: sr.Version, events: []api.EventRef{}}, true, nil
}

// create records the result unless one is recorded already, and returns the recorded one;
// created is false when it was there before (a concurrent or earlier attempt).
func (r *results) create(ctx context.Context, aggregate, command uuid.UUID, res commandResult) (commandResult, bool, error) {
	data, err := json.Marshal(storedResult{Version: res.version, RecordedAt: time.Now().UTC()})
	if err != nil {
		return commandResult{}, false, err
	}
	_, err = r.kv.Create(ctx, resultKey(aggregate, command), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		prev, ok, err := r.get(ctx, aggregate, command)
		if err != nil {
			return commandResult{}, false, err
		}
		if !ok {
			// Created and expired in between: an earlier attempt changed nothing too.
			return res, false, nil
		}
		return prev, false, nil
	}
	if err != nil {
		return commandResult{}, false, fmt.Errorf("record the result of command %s: %w", command, unavailable(err))
	}
	return res, true, nil
}
