package commandservice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// IndexKeysResult is what IndexKeys did.
type IndexKeysResult struct {
	// Claimed counts the keys claimed now, Held those their resource already held.
	Claimed, Held int
	// Duplicates are the keys that several live resources hold: none of them is claimed.
	Duplicates []KeyDuplicate
	// Conflicts are keys that one live resource holds by the events while another resource
	// holds their claim (not claimed either).
	Conflicts []KeyDuplicate
}

// KeyDuplicate is one key and the resources that hold it.
type KeyDuplicate struct {
	Key       cr.Key
	Resources []uuid.UUID
}

// IndexKeys claims, on the event stream's key subjects, the keys (cr.Keys) of every live
// resource of the stream: for a stream written without them, or by services that ran with
// -unique-keys=false. A key that several live resources hold is a duplicate: it is reported
// with their ids and claimed for none, so that an operator decides (decommission or rename one,
// then run it again). It is idempotent and may run while the service serves: each claim
// expects the key's subject as read (a claim by the service meanwhile wins), and a resource
// that changed meanwhile is read again afterwards and its claim released if it no longer holds
// the key.
func IndexKeys(ctx context.Context, js jetstream.JetStream, sc jetstore.Config) (IndexKeysResult, error) {
	if sc.KeyPrefix == "" {
		sc.KeyPrefix = jetstore.DefaultKeyPrefix
	}
	store, err := jetstore.New(js, sc, jetstore.WithUpcasters(resourcestore.Upcasters()...))
	if err != nil {
		return IndexKeysResult{}, fmt.Errorf("commandservice: index keys: %w", err)
	}
	states := map[uuid.UUID]cr.State{}
	last := map[uuid.UUID]uint64{}
	err = store.ReadAll(ctx, 1, func(rec jetstore.RecordedEvent) error {
		if rec.Aggregate.Type != resourcestore.AggregateType {
			return nil
		}
		e, err := resourcestore.FromStore(rec)
		if err != nil {
			return err
		}
		id := e.Meta().AggregateID
		states[id] = cr.Apply(states[id], e)
		last[id] = rec.Sequence
		return nil
	})
	if err != nil {
		return IndexKeysResult{}, fmt.Errorf("commandservice: index keys: %w", err)
	}
	holders := map[cr.Key][]uuid.UUID{}
	for id, s := range states {
		for _, k := range cr.Keys(s) {
			holders[k] = append(holders[k], id)
		}
	}
	keys := make([]cr.Key, 0, len(holders))
	for k := range holders {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cr.Key) int {
		if a.Space != b.Space {
			return compare(string(a.Space), string(b.Space))
		}
		return compare(a.Value, b.Value)
	})

	var res IndexKeysResult
	for _, k := range keys {
		ids := holders[k]
		if len(ids) > 1 {
			slices.SortFunc(ids, func(a, b uuid.UUID) int { return compare(a.String(), b.String()) })
			res.Duplicates = append(res.Duplicates, KeyDuplicate{Key: k, Resources: ids})
			continue
		}
		id := ids[0]
		claimed, held, other, err := claimKey(ctx, js, store, k, id)
		switch {
		case err != nil:
			return res, fmt.Errorf("commandservice: index keys: %s %q for %s: %w", k.Space, k.Value, id, err)
		case other != uuid.Nil:
			res.Conflicts = append(res.Conflicts, KeyDuplicate{Key: k, Resources: []uuid.UUID{id, other}})
			continue
		case held:
			res.Held++
			continue
		case claimed:
			res.Claimed++
		}
		// The resource may have changed between the read and the claim: if it no longer
		// holds the key, let the claim go.
		loaded, err := store.Load(ctx, resourcestore.Ref(id), jetstore.After(last[id]))
		if err != nil {
			return res, fmt.Errorf("commandservice: index keys: %w", err)
		}
		if len(loaded.Events) == 0 {
			continue
		}
		s, err := resourcestore.FoldStored(states[id], loaded.Events)
		if err != nil {
			return res, fmt.Errorf("commandservice: index keys: %w", err)
		}
		if !slices.Contains(cr.Keys(s), k) {
			if err := releaseKey(ctx, js, store, k, id); err != nil {
				return res, fmt.Errorf("commandservice: index keys: %s %q for %s: %w", k.Space, k.Value, id, err)
			}
			res.Claimed--
		}
	}
	return res, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// claimKey claims k for id unless it is held: by id (held), or by another resource (other). A
// key that changed between the read and the claim is read again.
func claimKey(ctx context.Context, js jetstream.JetStream, store *jetstore.Store, k cr.Key, id uuid.UUID) (claimed, held bool, other uuid.UUID, err error) {
	err = retry.Do(ctx, retry.Policy{Attempts: 3, Retryable: keyChanged}, func() error {
		claimed, held, other, err = claimKeyOnce(ctx, js, store, k, id)
		return err
	})
	return claimed, held, other, err
}

// keyChanged says that a key's write expected a sequence its subject no longer has.
func keyChanged(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func claimKeyOnce(ctx context.Context, js jetstream.JetStream, store *jetstore.Store, k cr.Key, id uuid.UUID) (claimed, held bool, other uuid.UUID, err error) {
	h, err := store.Key(ctx, string(k.Space), k.Value)
	if err != nil {
		return false, false, uuid.Nil, err
	}
	if h.Held {
		if h.Aggregate == resourcestore.Ref(id) {
			return false, true, uuid.Nil, nil
		}
		other, err := uuid.Parse(h.Aggregate.ID)
		if err != nil {
			return false, false, uuid.Nil, fmt.Errorf("holder %s: %w", h.Aggregate, err)
		}
		return false, false, other, nil
	}
	if err := writeKey(ctx, js, store, k, id, jetstore.KeyOpClaim, h.Sequence); err != nil {
		return false, false, uuid.Nil, err
	}
	return true, false, uuid.Nil, nil
}

// releaseKey releases k if id holds it.
func releaseKey(ctx context.Context, js jetstream.JetStream, store *jetstore.Store, k cr.Key, id uuid.UUID) error {
	h, err := store.Key(ctx, string(k.Space), k.Value)
	if err != nil || !h.Held || h.Aggregate != resourcestore.Ref(id) {
		return err
	}
	return writeKey(ctx, js, store, k, id, jetstore.KeyOpRelease, h.Sequence)
}

// writeKey writes a key message as an append does (pkg/jetstore's key headers), expecting the
// key's subject at sequence expected: a claim or release by anyone meanwhile makes it fail.
func writeKey(ctx context.Context, js jetstream.JetStream, store *jetstore.Store, k cr.Key, id uuid.UUID, op string, expected uint64) error {
	subject, err := store.KeySubject(string(k.Space), k.Value)
	if err != nil {
		return err
	}
	ref := resourcestore.Ref(id)
	m := &nats.Msg{Subject: subject, Header: nats.Header{
		jetstore.HeaderEventID:              {"index-keys/" + subject + "/" + id.String() + "/" + op + "/" + strconv.FormatUint(expected, 10)},
		jetstore.HeaderKeySpace:             {string(k.Space)},
		jetstore.HeaderKey:                  {k.Value},
		jetstore.HeaderKeyOp:                {op},
		jetstore.HeaderAggregateType:        {ref.Type},
		jetstore.HeaderAggregateID:          {ref.ID},
		jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(expected, 10)},
	}}
	_, err = js.PublishMsg(ctx, m)
	return err
}
