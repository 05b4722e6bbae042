package jetstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// msgGetRequest is the stream leader's message get request ($JS.API.STREAM.MSG.GET).
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// leaderGet reads one message through the stream leader. nats.go's Stream.GetMsg uses direct get
// whenever the stream allows it, and a direct get may be answered by a replica that has not yet
// applied the latest writes; deciding whether a write happened needs the leader's view.
// A missing message is jetstream.ErrMsgNotFound.
func (s *Store) leaderGet(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	reply, err := s.apiRequest(ctx, "STREAM.MSG.GET.", req)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("jetstore: message get reply: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, resp.Error
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("jetstore: message get reply without message")
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("jetstore: headers of message %d: %w", m.Sequence, err)
		}
	}
	return m, nil
}

// apiRequest sends req as JSON to the stream's JetStream API subject <api><stream> (api is
// "DIRECT.GET.", say) and returns the reply; ctx is bounded by the JetStream default timeout when
// it has no deadline.
func (s *Store) apiRequest(ctx context.Context, api string, req any) (*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withDefaultTimeout(ctx)
	defer cancel()
	return s.js.Conn().RequestWithContext(ctx, s.apiSubject(api+s.cfg.Stream), body)
}

// withDefaultTimeout returns ctx bounded by the JetStream default timeout when it has no
// deadline, as nats.go's JetStream calls bound theirs.
func (s *Store) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.js.Options().DefaultTimeout)
}

// apiSubject prefixes a JetStream API subject the way the JetStream context does (domain or
// custom prefix).
func (s *Store) apiSubject(subject string) string {
	o := s.js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "." + subject
	case o.Domain != "":
		return "$JS." + o.Domain + ".API." + subject
	default:
		return "$JS.API." + subject
	}
}
