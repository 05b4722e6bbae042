package jetstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// AppendResult tells where the events of an Append were stored.
type AppendResult struct {
	// FirstSequence and LastSequence are the stream sequences of the first and last event.
	// LastSequence is the expected sequence of the aggregate's next append.
	FirstSequence, LastSequence uint64
	// Duplicate is true when the events had already been written, as one write of this
	// aggregate with the same event ids in the same order, by an earlier Append (a retry whose
	// reply was lost); the sequences are the original ones and nothing new was written.
	Duplicate bool
}

// Server error codes that mean "the aggregate is not at the expected sequence": 10071 from a
// single server (with the actual sequence in the text), 10164 from a replicated stream or while
// another write to the subject is in flight.
const (
	codeWrongLastSequence         = jetstream.JSErrCodeStreamWrongLastSequence
	codeWrongLastSequenceConstant = jetstream.JSErrCodeStreamWrongLastSequenceConstant
)

// Append appends events to the aggregate if its last sequence is expected (0: the aggregate must
// not exist yet). The server enforces the expectation, so of several concurrent appends with the
// same expected sequence exactly one succeeds; the others fail with a *ConcurrencyError
// (errors.Is(err, ErrConcurrency)).
//
// Several events are written as one atomic batch: all or none. More than
// Config.MaxEventsPerAppend events fail with ErrTooManyEvents and no events with ErrNoEvents,
// before anything is sent. Every event needs a unique ID, which becomes its Nats-Msg-Id.
//
// Retrying an Append whose reply was lost is safe. When the same write is already stored (the
// same event ids, in the same order, as one write of this aggregate), Append returns Duplicate:
// true with the original sequences and writes nothing: retried with the same expected sequence,
// or with the aggregate's current one after a reload, on single servers and replicated streams
// alike. (Retried with an expected sequence that is behind the aggregate, with other writes
// between it and the stored write, it may first fail with a *ConcurrencyError; after a reload
// it is recognised.)
//
// Event ids stored within the stream's duplicates window, but not as this same write (on
// another aggregate, or as part of another write), fail with an *EventIDReusedError
// (errors.Is(err, ErrEventIDReused)) and nothing is written: a retry cannot succeed, the events
// need new ids.
func (s *Store) Append(ctx context.Context, agg AggregateRef, expected uint64, events []Event) (AppendResult, error) {
	subject, err := s.Subject(agg)
	if err != nil {
		return AppendResult{}, err
	}
	if len(events) == 0 {
		return AppendResult{}, fmt.Errorf("%w: aggregate %s", ErrNoEvents, agg)
	}
	if len(events) > s.cfg.MaxEventsPerAppend {
		return AppendResult{}, fmt.Errorf("%w: %d events for %s, at most %d", ErrTooManyEvents, len(events), agg, s.cfg.MaxEventsPerAppend)
	}
	var ids map[string]struct{} // most appends hold one event: they need no set of ids
	if len(events) > 1 {
		ids = make(map[string]struct{}, len(events))
	}
	for i := range events {
		if err := events[i].validate(); err != nil {
			return AppendResult{}, err
		}
		if ids == nil {
			continue
		}
		if _, dup := ids[events[i].ID]; dup {
			return AppendResult{}, fmt.Errorf("%w: event id %q appears twice in one append", ErrInvalidEvent, events[i].ID)
		}
		ids[events[i].ID] = struct{}{}
	}
	if err := ctxErr(ctx); err != nil {
		return AppendResult{}, err
	}

	w := &write{agg: agg, subject: subject, events: events}
	var res AppendResult
	if len(events) == 1 {
		res, err = s.publishOne(ctx, w, expected)
	} else {
		res, err = s.publishBatch(ctx, w, expected)
	}
	if err == nil {
		return res, nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant:
			return s.resolveConflict(ctx, w, expected, err)
		case jetstreamext.JSErrCodeBatchPublishDuplicateMsgID:
			return s.resolveDuplicateID(ctx, w, err)
		}
	}
	return AppendResult{}, fmt.Errorf("jetstore: append %d events to %s: %w", len(events), agg, classify(err))
}

func (s *Store) publishOne(ctx context.Context, w *write, expected uint64) (AppendResult, error) {
	m := w.events[0].message(w.subject, w.agg)
	m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(expected, 10)}
	ack, err := s.publishMsg(ctx, m)
	if err != nil {
		return AppendResult{}, err
	}
	if ack.Duplicate {
		// The id is stored: by this write (a retry), or by another.
		return s.duplicateAck(ctx, w, ack.Sequence)
	}
	return w.result(ack.Sequence, false), nil
}

// publishMsg is jetstream.JetStream's PublishMsg as nats.go implements it (the ctx bounded by
// the default timeout if it has no deadline; the request retried twice, 250ms apart, while
// no stream responds; the same errors), except that the usual acknowledgement is read
// without encoding/json: decoding it was 3% of the command service's CPU. Any other reply is
// decoded as nats.go decodes it.
func (s *Store) publishMsg(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	ctx, cancel := s.withDefaultTimeout(ctx)
	defer cancel()
	nc := s.js.Conn()
	resp, err := nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// A stream without a leader for a moment (an election) has no responder.
		select {
		case <-ctx.Done():
		case <-time.After(jetstream.DefaultPubRetryWait):
		}
		resp, err = nc.RequestMsgWithContext(ctx, m)
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, jetstream.ErrNoStreamResponse
	case err != nil:
		return nil, err
	}
	if ack, ok := readPubAck(resp.Data); ok {
		return ack, nil
	}
	return unmarshalPubAck(resp.Data)
}

// unmarshalPubAck reads a reply to a publish as nats.go's PublishMsg does.
func unmarshalPubAck(data []byte) (*jetstream.PubAck, error) {
	var reply struct {
		Type  string              `json:"type"`
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("nats: %w", reply.Error)
	}
	if reply.PubAck == nil || reply.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return reply.PubAck, nil
}

// readPubAck reads an acknowledgement of the usual form, {"stream":"S","seq":N} with perhaps
// "duplicate" and "domain", with no other member, no member twice, no escape sequence and a
// stream name: what the server sends for a stored message. ok is false for anything else,
// which unmarshalPubAck must read. FuzzReadPubAck compares the two.
func readPubAck(data []byte) (ack *jetstream.PubAck, ok bool) {
	var a jetstream.PubAck
	var seen uint8
	i := skipJSONSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	for {
		i = skipJSONSpace(data, i+1)
		name, end, ok := plainJSONBytes(data, i)
		if !ok {
			return nil, false
		}
		i = skipJSONSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipJSONSpace(data, i+1)
		var bit uint8
		ok = false
		switch string(name) {
		case "stream":
			bit = 1
			a.Stream, i, ok = plainJSONString(data, i)
		case "seq":
			bit = 2
			a.Sequence, i, ok = jsonUint(data, i)
		case "duplicate":
			bit = 4
			switch {
			case bytes.HasPrefix(data[i:], []byte("true")):
				a.Duplicate, i, ok = true, i+4, true
			case bytes.HasPrefix(data[i:], []byte("false")):
				i, ok = i+5, true
			}
		case "domain":
			bit = 8
			a.Domain, i, ok = plainJSONString(data, i)
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		i = skipJSONSpace(data, i)
		if i < len(data) && data[i] == ',' {
			continue
		}
		if i >= len(data) || data[i] != '}' || skipJSONSpace(data, i+1) != len(data) || a.Stream == "" {
			return nil, false
		}
		return &a, true
	}
}

// plainJSONString reads the JSON string at data[i] if it has no escape sequence and is valid
// UTF-8, and returns its content and the index after it.
func plainJSONString(data []byte, i int) (s string, end int, ok bool) {
	content, end, ok := plainJSONBytes(data, i)
	return string(content), end, ok
}

func plainJSONBytes(data []byte, i int) (content []byte, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			content := data[i+1 : j]
			return content, j + 1, utf8.Valid(content)
		case c == '\\' || c < ' ':
			return nil, i, false
		}
	}
	return nil, i, false
}

// jsonUint reads an unsigned integer with neither sign, fraction nor exponent that fits a
// uint64, and returns it and the index after it.
func jsonUint(data []byte, i int) (n uint64, end int, ok bool) {
	j := i
	for j < len(data) && '0' <= data[j] && data[j] <= '9' {
		j++
	}
	if j == i || (data[i] == '0' && j > i+1) {
		return 0, i, false
	}
	n, err := strconv.ParseUint(string(data[i:j]), 10, 64)
	return n, j, err == nil
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func (s *Store) publishBatch(ctx context.Context, w *write, expected uint64) (AppendResult, error) {
	msgs := make([]*nats.Msg, len(w.events))
	for i := range w.events {
		msgs[i] = w.events[i].message(w.subject, w.agg)
	}
	// The expectation goes on the first message only; the server checks it at commit against the
	// stream as it was before the batch.
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, fmt.Sprint(expected))
	// The first message is acknowledged (the library's default) so that a batch the stream refuses
	// fails at once rather than at commit; that wait is bounded by ctx's deadline.
	fc := jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: s.js.Options().DefaultTimeout}
	if d, ok := ctx.Deadline(); ok {
		fc.AckTimeout = max(time.Until(d), time.Millisecond)
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, fc)
	if err != nil {
		return AppendResult{}, err
	}
	// An atomic batch is stored contiguously; the ack names the commit (last) message.
	return w.result(ack.Sequence-uint64(w.size())+1, false), nil
}
