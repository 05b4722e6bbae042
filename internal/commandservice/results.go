package commandservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// results records, in a JetStream key-value bucket, the outcome of every command sent with its
// own command id that wrote no event: its result if it changed nothing, its refusal if the domain
// refused it. The key is "<aggregate id>.<command id>", the record is kept for the bucket's TTL.
// Such a command leaves no event, so without this record a re-send would be decided again, and
// would write if the state had changed meanwhile. The bucket is bounded (MaxBytes, discarding
// new records when full): a record that does not fit is not made, which a re-send then shows by
// being decided afresh, and the metrics count.
type results struct {
	kv jetstream.KeyValue
	// records counts record attempts by result (unchanged, refusal) and outcome (recorded,
	// existing, bucket_full).
	records *prometheus.CounterVec
}

// Outcomes of recording a result, the "outcome" label of results_records_total.
const (
	RecordRecorded   = "recorded"    // the record was made
	RecordExisting   = "existing"    // an earlier attempt of the command had made it
	RecordBucketFull = "bucket_full" // the bucket is full: not recorded
)

// storedResult is the recorded form of a commandResult.
type storedResult struct {
	Version    uint64    `json:"version"`
	RecordedAt time.Time `json:"recorded_at"`
	// Digest is the requestDigest of the command; empty in records made before digests were
	// kept, which are then answered without checking.
	Digest string `json:"digest,omitempty"`
	// Refusal is the error reply of a refused command; nil for a command that changed nothing.
	Refusal *api.Error `json:"refusal,omitempty"`
}

// openResults creates the bucket if it does not exist.
func openResults(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ttl time.Duration, maxBytes int64, records *prometheus.CounterVec) (*results, error) {
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Outcomes of commands that wrote nothing (changed nothing, or refused), so that their re-sends get the same reply",
		History:     1,
		TTL:         ttl,
		MaxBytes:    maxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("commandservice: results bucket %s: %w", bucket, err)
	}
	return &results{kv: kv, records: records}, nil
}

// openBucket looks the key-value bucket up, or creates it with cfg if it does not exist. An
// existing bucket is used as it is: the service may create a stream but not update one.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	// Every step may meet a bucket another instance is creating at this moment, which has no
	// leader yet and leaves requests unanswered: jetstore.UntilAnswered retries with short attempts.
	kv, err := jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) })
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.CreateKeyValue(ctx, cfg) })
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) })
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
	return commandResult{version: sr.Version, events: []api.EventRef{}, digest: sr.Digest, refusal: sr.Refusal}, true, nil
}

// create records the result unless one is recorded already, and returns the recorded one with
// the outcome (RecordRecorded, RecordExisting: made by an earlier or concurrent attempt, whose
// record is returned, or RecordBucketFull: not recorded).
func (r *results) create(ctx context.Context, aggregate, command uuid.UUID, res commandResult) (commandResult, string, error) {
	data, err := json.Marshal(storedResult{Version: res.version, RecordedAt: time.Now().UTC(), Digest: res.digest, Refusal: res.refusal})
	if err != nil {
		return commandResult{}, "", err
	}
	kind := "unchanged"
	if res.refusal != nil {
		kind = "refusal"
	}
	_, err = r.kv.Create(ctx, resultKey(aggregate, command), data)
	switch {
	case err == nil:
		r.records.WithLabelValues(kind, RecordRecorded).Inc()
		return res, RecordRecorded, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		r.records.WithLabelValues(kind, RecordExisting).Inc()
		prev, ok, err := r.get(ctx, aggregate, command)
		if err != nil {
			return commandResult{}, "", err
		}
		if !ok {
			// Created and expired in between: an earlier attempt wrote nothing either.
			return res, RecordExisting, nil
		}
		return prev, RecordExisting, nil
	case bucketFull(err):
		r.records.WithLabelValues(kind, RecordBucketFull).Inc()
		return res, RecordBucketFull, nil
	default:
		return commandResult{}, "", fmt.Errorf("record the result of command %s: %w", command, unavailable(err))
	}
}

// bucketFull reports whether err is the server's refusal to store a message beyond the bucket's
// limits (it discards new messages).
func bucketFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.ErrorCode(10077) && strings.Contains(apiErr.Description, "maximum")
}
