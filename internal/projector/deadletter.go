package projector

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter headers, added to the original event's headers on the copy kept in the dead-letter
// stream.
const (
	HeaderDLQReason    = "Cim-Dlq-Reason"
	HeaderDLQStreamSeq = "Cim-Dlq-Stream-Seq"
	HeaderDLQSubject   = "Cim-Dlq-Subject"
	HeaderDLQProjector = "Cim-Dlq-Projector"
)

// DeadLetterConfig names the stream that keeps events a projector could not apply.
type DeadLetterConfig struct {
	// Stream is the dead-letter stream's name (default "CIM_DLQ").
	Stream string
	// SubjectPrefix is the subject prefix; a projector writes to "<prefix>.<projector>"
	// (default "cim.dlq").
	SubjectPrefix string
	// Replicas of the dead-letter stream when the runner creates it (default 1).
	Replicas int
}

func (c *DeadLetterConfig) defaults() {
	if c.Stream == "" {
		c.Stream = "CIM_DLQ"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "cim.dlq"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// EnsureDeadLetterStream creates the dead-letter stream if it does not exist. An existing stream
// is used as it is (an operator may have given it other limits).
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, cfg DeadLetterConfig) error {
	cfg.defaults()
	// A dead-letter stream another projector is creating at this moment has no leader yet and
	// leaves requests unanswered: jetstore.UntilAnswered retries with short attempts.
	_, err := jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, cfg.Stream) })
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("projector: dead-letter stream %s: %w", cfg.Stream, err)
	}
	_, err = jetstore.UntilAnswered(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Stream,
			Description: "Events a projector could not apply, with the reason (Cim-Dlq-* headers).",
			Subjects:    []string{cfg.SubjectPrefix + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			DenyDelete:  true,
		})
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("projector: create dead-letter stream %s: %w", cfg.Stream, err)
	}
	return nil
}

// deadLetter stores a copy of d with the reason, acknowledged by the stream, before the original
// is acknowledged: a dead-lettered event is kept, never dropped. The Nats-Msg-Id makes a retry
// after a crash between the two steps harmless.
func deadLetter(ctx context.Context, js jetstream.JetStream, subject, projector string, d Delivery, reason error) error {
	m := nats.NewMsg(subject)
	m.Data = d.Data
	for k, v := range d.Header {
		// Headers the server acts on (Nats-Msg-Id, Nats-Expected-Last-Subject-Sequence,
		// Nats-Batch-*, ...) were meant for the original append: copied, they would make the
		// server de-duplicate or refuse the dead letter.
		if strings.HasPrefix(textproto.CanonicalMIMEHeaderKey(k), "Nats-") {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(HeaderDLQReason, reason.Error())
	m.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(d.Sequence, 10))
	m.Header.Set(HeaderDLQSubject, d.Subject)
	m.Header.Set(HeaderDLQProjector, projector)
	_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(projector+"-"+strconv.FormatUint(d.Sequence, 10)))
	if err != nil {
		return fmt.Errorf("projector: dead-letter stream sequence %d: %w", d.Sequence, err)
	}
	return nil
}
