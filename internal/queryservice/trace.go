package queryservice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/internal/retry"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// correlationOf is an event's correlation id: the command's id when the event has none (the
// command started the flow).
func correlationOf(m cr.EventMeta) uuid.UUID {
	if m.CorrelationID == uuid.Nil {
		return m.CommandID
	}
	return m.CorrelationID
}

// causationOf is an event's causation id: the command's id when the event has none (the
// command caused it).
func causationOf(m cr.EventMeta) uuid.UUID {
	if m.CausationID == uuid.Nil {
		return m.CommandID
	}
	return m.CausationID
}

// Reading a trace's events from the stream: at most traceReads direct gets in flight, and a
// message a replica says it does not have is asked for again (a direct get may be answered by
// a replica that has not yet stored an event the model applied) up to traceReadAttempts times.
const (
	traceReads        = 16
	traceReadAttempts = 4
)

// traceReadBackoff is the pause before asking again for a message not found.
var traceReadBackoff = retry.Backoff{Next: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// trace answers a trace query from view v: the index gives the sequences of the correlation's
// events at or below the view's sequence, and the events are read from the stream. An event
// whose correlation id is another (its key is the same) is left out; an event that cannot be
// read fails the query with 503 unavailable rather than shortening the trace.
func trace(ctx context.Context, v View, events jetstream.Stream, correlation uuid.UUID) (api.TraceReply, error) {
	out := api.TraceReply{CorrelationID: correlation.String(), Events: []api.TraceEvent{}, AsOfSequence: v.Sequence()}
	seqs := v.trace.sequences(correlationKey(correlation), v.Sequence())
	read, err := readEvents(ctx, events, seqs)
	if err != nil {
		return out, err
	}
	for i, e := range read {
		meta := e.Meta()
		if correlationOf(meta) != correlation {
			continue
		}
		out.Events = append(out.Events, api.TraceEvent{
			Sequence: seqs[i], Type: e.EventType(), ID: meta.EventID.String(), AggregateType: aggregateType,
			AggregateID: meta.AggregateID.String(), CommandID: nilEmpty(meta.CommandID),
			CausationID: nilEmpty(causationOf(meta)), Timestamp: meta.Timestamp.UTC(),
		})
	}
	return out, nil
}

// readEvents reads and decodes the events at seqs, at most traceReads at a time; the error is
// that of the first sequence that failed.
func readEvents(ctx context.Context, stream jetstream.Stream, seqs []uint64) ([]cr.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := make([]cr.Event, len(seqs)), make([]error, len(seqs))
	slots := make(chan struct{}, traceReads)
	var wg sync.WaitGroup
	for i, seq := range seqs {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if events[i], errs[i] = readEvent(ctx, stream, seq); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		// A read cancelled because another failed is not the cause.
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, readError(seqs[i], stream, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, readError(seqs[i], stream, err)
		}
	}
	return events, nil
}

func readEvent(ctx context.Context, stream jetstream.Stream, seq uint64) (cr.Event, error) {
	backoff := traceReadBackoff
	for attempt := 1; ; attempt++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err == nil {
			e, err := resourcestore.DecodeMsg(msg.Header, msg.Data)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errUndecodable, err)
			}
			return e, nil
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) || attempt == traceReadAttempts || !backoff.Wait(ctx) {
			return nil, err
		}
	}
}

// errUndecodable: a message the index points at is not an event the model can decode.
var errUndecodable = errors.New("event cannot be decoded")

func readError(seq uint64, stream jetstream.Stream, err error) error {
	if errors.Is(err, errUndecodable) {
		return newError(api.CodeInternal, api.KindInternal, "", "the event at stream sequence %d: %v", seq, err)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return newError(api.CodeUnavailable, api.KindUnavailable, "",
			"the event at stream sequence %d is not in stream %s (deleted?): the trace cannot be complete", seq, stream.CachedInfo().Config.Name)
	}
	return newError(api.CodeUnavailable, api.KindUnavailable, "",
		"reading the event at stream sequence %d from stream %s: %v; ask again", seq, stream.CachedInfo().Config.Name, err)
}

func nilEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
