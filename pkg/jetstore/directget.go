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
		body, err := json.Marshal(directGetRequest{Seq: from, Batch: batch, NextFor: subject})
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
		// batch messages and the end-of-batch status, or a single status: never more.
		replies := make(chan *nats.Msg, batch+2)
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
			var m *nats.Msg
			select {
			case m = <-replies:
			case <-closed:
				if nc.IsClosed() {
					yield(nil, nats.ErrConnectionClosed)
				}
				return
			case <-ctx.Done():
				return
			}
			if len(m.Data) == 0 {
				switch status := m.Header.Get("Status"); status {
				case "": // a stored message with empty data
				case statusEndOfBatch:
					return
				case statusNotFound:
					yield(nil, errNoMessages)
					return
				case statusNoResponders:
					yield(nil, fmt.Errorf("direct get on stream %s: no answer (stream missing?): %w", s.cfg.Stream, nats.ErrNoResponders))
					return
				default:
					yield(nil, &unavailableError{err: fmt.Errorf("direct get on stream %s: status %s %s", s.cfg.Stream, status, m.Header.Get("Description"))})
					return
				}
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

// directGetMsg reads a stored message out of a batch direct get reply.
func (s *Store) directGetMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	if m.Header.Get("Nats-Num-Pending") == "" {
		// A server before 2.11 ignores "batch" and answers with one plain direct get reply.
		return nil, &unavailableError{err: fmt.Errorf("direct get on stream %s: reply without Nats-Num-Pending (server older than 2.11?): batch direct get unsupported", s.cfg.Stream)}
	}
	return s.directReply(m)
}

// directLast reads the last message on subject with one (non-batch) direct get, answered by any
// replica; a subject without messages is jetstream.ErrMsgNotFound.
func (s *Store) directLast(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := s.apiRequest(ctx, "DIRECT.GET.", struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	if len(m.Data) == 0 {
		switch status := m.Header.Get("Status"); status {
		case "":
		case statusNotFound:
			return nil, jetstream.ErrMsgNotFound
		default:
			return nil, &unavailableError{err: fmt.Errorf("direct get on stream %s: status %s %s", s.cfg.Stream, status, m.Header.Get("Description"))}
		}
	}
	return s.directReply(m)
}

// directReply reads the stored message of a direct get reply from its headers and data.
func (s *Store) directReply(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	bad := func(header, value string) error {
		return fmt.Errorf("direct get on stream %s: invalid reply: %s header %q", s.cfg.Stream, header, value)
	}
	if v := m.Header.Get(jetstream.StreamHeader); v == "" {
		return nil, bad(jetstream.StreamHeader, v)
	}
	v := m.Header.Get(jetstream.SequenceHeader)
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, bad(jetstream.SequenceHeader, v)
	}
	v = m.Header.Get(jetstream.TimeStampHeaer)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, bad(jetstream.TimeStampHeaer, v)
	}
	subject := m.Header.Get(jetstream.SubjectHeader)
	if subject == "" {
		return nil, bad(jetstream.SubjectHeader, subject)
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: m.Header, Data: m.Data, Time: t}, nil
}
