package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batch direct get (ADR-31, server 2.11+), done here rather than with orbit's
// jetstreamext.GetBatch: that one reads the replies through nats.go's SubscribeSync, whose channel
// holds the connection's SubChanLen (64k) messages, 512 KB allocated on every call, while a page
// never brings more than its batch of messages and one status.

// directGetRequest is the body of a batch direct get ($JS.API.DIRECT.GET.<stream>).
type directGetRequest struct {
	Seq     uint64 `json:"seq"`
	Batch   int    `json:"batch"`
	NextFor string `json:"next_by_subj"`
}

// errNoMessages: no message on the subject from the asked sequence on.
var errNoMessages = errors.New("no messages")

// Status replies of a direct get (headers only, no data).
const (
	statusEndOfBatch = "204" // "EOB", the last reply of a batch
	statusNotFound   = "404" // no message from the start sequence on
	// No subscriber for the request (the stream does not exist): sent by the server to a
	// connection that, like nats.go's, asks for it.
	statusNoResponders = "503"
)

// directBatch asks any replica of the stream for up to batch messages on subject (which may be a
// wildcard) from stream sequence from on, and yields them in stream order.
//
// It ends after the server's end-of-batch status; it yields errNoMessages when no message
// matches from `from` on. Like jetstreamext.GetBatch, it ends silently when ctx is done or, when
// ctx has no deadline, after the connection's timeout: read tells such an end from a complete
// page by the Nats-Num-Pending count of the last message. Breaking out of the loop is allowed;
// the reply subscription is removed whichever way the loop ends.
func (s *Store) directBatch(ctx context.Context, subject string, from uint64, batch int) iter.Seq2[*jetstream.RawStreamMsg, error] {
	return func(yield func(*jetstream.RawStreamMsg, error) bool) {
		// batch messages and the end-of-batch status, or a single status: never more.
		for m, err := range s.directGet(ctx, directGetRequest{Seq: from, Batch: batch, NextFor: subject}, batch+2) {
			if err != nil {
				yield(nil, err)
				return
			}
			if isStatus(m) {
				switch status := m.Header.Get("Status"); status {
				case statusEndOfBatch:
				case statusNotFound:
					yield(nil, errNoMessages)
				default:
					yield(nil, s.statusError(m))
				}
				return
			}
			rm, err := s.directGetMsg(m)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(rm, nil) {
				return
			}
		}
	}
}

// directGet sends a direct get request to any replica of the stream and yields its replies as
// they come, for up to n replies in flight. It reads the replies on a subscription of its own
// rather than with a request: nats.go's requests take any reply with a Status header of 503 and
// no data for "no responders", and a stored message may be just that. It ends silently when
// ctx is done or, when ctx has no deadline, after the connection's timeout.
func (s *Store) directGet(ctx context.Context, req any, n int) iter.Seq2[*nats.Msg, error] {
	return func(yield func(*nats.Msg, error) bool) {
		body, err := json.Marshal(req)
		if err != nil {
			yield(nil, err)
			return
		}
		nc := s.js.Conn()
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, nc.Opts.Timeout)
			defer cancel()
		}
		replies := make(chan *nats.Msg, n)
		inbox := nc.NewRespInbox()
		sub, err := nc.ChanSubscribe(inbox, replies)
		if err != nil {
			yield(nil, err)
			return
		}
		defer sub.Unsubscribe()
		// A channel subscription's channel stays open when the connection closes: the closed
		// handler says so instead.
		closed := make(chan struct{}, 1)
		sub.SetClosedHandler(func(string) {
			select {
			case closed <- struct{}{}:
			default:
			}
		})
		if err := nc.PublishMsg(&nats.Msg{Subject: s.apiSubject("DIRECT.GET." + s.cfg.Stream), Reply: inbox, Data: body}); err != nil {
			yield(nil, err)
			return
		}
		for {
			select {
			case m := <-replies:
				if !yield(m, nil) {
					return
				}
			case <-closed:
				if nc.IsClosed() {
					yield(nil, nats.ErrConnectionClosed)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// isStatus reports whether a direct get reply is a status of the server rather than a stored
// message. The server puts Nats-Sequence (with Nats-Stream, Nats-Subject and Nats-Time-Stamp) on
// every stored message it returns and on no status. A stored message may carry any header its
// writer chose, Status and Description included, and no data: those cannot tell.
func isStatus(m *nats.Msg) bool { return len(m.Header[jetstream.SequenceHeader]) == 0 }

// statusError is the error of a status reply other than end-of-batch or not-found.
func (s *Store) statusError(m *nats.Msg) error {
	if status := m.Header.Get("Status"); status != statusNoResponders {
		return &unavailableError{err: fmt.Errorf("direct get on stream %s: status %s %s", s.cfg.Stream, status, m.Header.Get("Description"))}
	}
	return fmt.Errorf("direct get on stream %s: no answer (stream missing?): %w", s.cfg.Stream, nats.ErrNoResponders)
}

// serverHeader returns the value of a header the server adds to a stored message it returns.
// The server appends its headers after the message's own, so where a writer put a header of
// the same name on the message, the server's is the last.
func serverHeader(h nats.Header, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

// directGetMsg reads a stored message out of a batch direct get reply.
func (s *Store) directGetMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if serverHeader(m.Header, numPendingHeader) == "" {
		// A server before 2.11 ignores "batch" and answers with one plain direct get reply.
		return nil, &unavailableError{err: fmt.Errorf("direct get on stream %s: reply without Nats-Num-Pending (server older than 2.11?): batch direct get unsupported", s.cfg.Stream)}
	}
	return s.directReply(m)
}

// numPendingHeader is the header of a batch direct get reply that counts the messages left.
const numPendingHeader = "Nats-Num-Pending"

// directLast reads the last message on subject with one (non-batch) direct get, answered by any
// replica; a subject without messages is jetstream.ErrMsgNotFound.
func (s *Store) directLast(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := s.withDefaultTimeout(ctx)
	defer cancel()
	for m, err := range s.directGet(ctx, struct {
		LastFor string `json:"last_by_subj"`
	}{subject}, 1) {
		switch {
		case err != nil:
			return nil, err
		case !isStatus(m):
			return s.directReply(m)
		case m.Header.Get("Status") == statusNotFound:
			return nil, jetstream.ErrMsgNotFound
		default:
			return nil, s.statusError(m)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, nats.ErrBadSubscription // closed while the connection stays open (drained)
}

// directReply reads the stored message of a direct get reply from its headers and data.
func (s *Store) directReply(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	bad := func(header, value string) error {
		return fmt.Errorf("direct get on stream %s: invalid reply: %s header %q", s.cfg.Stream, header, value)
	}
	if v := serverHeader(m.Header, jetstream.StreamHeader); v == "" {
		return nil, bad(jetstream.StreamHeader, v)
	}
	v := serverHeader(m.Header, jetstream.SequenceHeader)
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, bad(jetstream.SequenceHeader, v)
	}
	v = serverHeader(m.Header, jetstream.TimeStampHeaer)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, bad(jetstream.TimeStampHeaer, v)
	}
	subject := serverHeader(m.Header, jetstream.SubjectHeader)
	if subject == "" {
		return nil, bad(jetstream.SubjectHeader, subject)
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: m.Header, Data: m.Data, Time: t}, nil
}
