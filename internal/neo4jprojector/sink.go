package neo4jprojector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/rs/zerolog"
)

// DefaultCheckpointName names the checkpoint node of this projector.
const DefaultCheckpointName = "neo4j"

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Name is the checkpoint node's name (default DefaultCheckpointName).
	Name string
	// Database is the Neo4j database ("" for the server's default).
	Database string
	// TxTimeout bounds one write transaction on the server (default 60s).
	TxTimeout time.Duration
	// ShutdownGrace is how long a batch in flight may still take once the runner's context is
	// done (default 10s): shutting down finishes the batch rather than abandoning it.
	ShutdownGrace time.Duration
}

// Sink is the projector.Sink of the graph: it applies a batch of events and its checkpoint in one
// Neo4j write transaction.
type Sink struct {
	driver neo4j.DriverWithContext
	cfg    SinkConfig
	log    zerolog.Logger

	// txPerEvent applies every event in its own transaction (the benchmark's baseline).
	txPerEvent bool
	// beforeCommit, when set, runs after a transaction's statements and before its commit; an
	// error rolls the transaction back (tests use it to crash mid-batch).
	beforeCommit func(ctx context.Context) error
}

// NewSink returns the graph's sink on driver.
func NewSink(driver neo4j.DriverWithContext, cfg SinkConfig, log zerolog.Logger) *Sink {
	if cfg.Name == "" {
		cfg.Name = DefaultCheckpointName
	}
	if cfg.TxTimeout <= 0 {
		cfg.TxTimeout = 60 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	return &Sink{driver: driver, cfg: cfg, log: log.With().Str("component", "neo4j-sink").Logger()}
}

// Apply implements projector.Sink. It decodes the batch, then in one write transaction locks and
// reads the checkpoint, loads the versions of the resources the batch touches, projects the
// events above the checkpoint, runs the compiled plan and moves the checkpoint.
//
// Errors: an event that cannot be decoded or projected is a *projector.PoisonError. A failure
// of Neo4j that an event's data caused (a constraint or type error) is narrowed down to that
// event by applying halves of the batch (committing the good prefix) and is then a
// *projector.PoisonError too, but only after a transaction without events succeeded: a good
// event is never dead-lettered because Neo4j itself fails. Everything else — connectivity, the
// server's transient errors, authentication — is returned as a transient error.
func (s *Sink) Apply(ctx context.Context, batch []projector.Delivery) error {
	events, err := decode(batch)
	if err != nil {
		return err
	}
	ctx, cancel := detach(ctx, s.cfg.ShutdownGrace)
	defer cancel()
	if s.txPerEvent {
		for i := range events {
			if err := s.applyOrFind(ctx, events[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return s.applyOrFind(ctx, events)
}

func (s *Sink) applyOrFind(ctx context.Context, events []SequencedEvent) error {
	err := s.applyTx(ctx, events)
	if err == nil || errors.Is(err, projector.ErrPoison) {
		return err
	}
	if !isDataError(err) {
		return fmt.Errorf("neo4jprojector: apply %d events from stream sequence %d: %w", len(events), events[0].Sequence, err)
	}
	s.log.Warn().Err(err).Uint64("first_seq", events[0].Sequence).Int("events", len(events)).
		Msg("batch refused by Neo4j; looking for the event that causes it")
	return s.findPoison(ctx, events)
}

// findPoison applies events in halves: a half that commits is done, a half refused for its data
// is searched further, down to the one event that is refused on its own.
func (s *Sink) findPoison(ctx context.Context, events []SequencedEvent) error {
	if len(events) == 1 {
		err := s.applyTx(ctx, events)
		if err == nil || errors.Is(err, projector.ErrPoison) || !isDataError(err) {
			return err
		}
		if cerr := s.control(ctx); cerr != nil {
			return fmt.Errorf("neo4jprojector: event at %d refused (%v), and so is a transaction without events: %w",
				events[0].Sequence, err, cerr)
		}
		return projector.Poison(events[0].Sequence, fmt.Errorf("neo4j refused the event's changes: %w", err))
	}
	mid := len(events) / 2
	err := s.applyTx(ctx, events[:mid])
	switch {
	case err == nil:
		return s.findPoison(ctx, events[mid:])
	case errors.Is(err, projector.ErrPoison):
		return err
	case isDataError(err):
		return s.findPoison(ctx, events[:mid])
	default:
		return fmt.Errorf("neo4jprojector: apply %d events from stream sequence %d: %w", mid, events[0].Sequence, err)
	}
}

// control runs the checkpoint's part of a transaction, without events, and rolls it back.
func (s *Sink) control(ctx context.Context) error {
	return s.inTx(ctx, func(tx neo4j.ExplicitTransaction) (bool, error) {
		_, err := lockCheckpoint(ctx, tx, s.cfg.Name)
		return false, err
	})
}

// applyTx applies events in one transaction; a poison event is returned as such before anything
// is written.
func (s *Sink) applyTx(ctx context.Context, events []SequencedEvent) error {
	return s.inTx(ctx, func(tx neo4j.ExplicitTransaction) (bool, error) {
		checkpoint, err := lockCheckpoint(ctx, tx, s.cfg.Name)
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		var ids []string
		for _, ev := range events {
			id := ev.Event.Meta().AggregateID.String()
			if ev.Sequence > checkpoint && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		versions, err := loadVersions(ctx, tx, ids)
		if err != nil {
			return false, err
		}
		state := State{Checkpoint: checkpoint, Versions: versions}
		var effects []Effect
		for _, ev := range events {
			var eff []Effect
			state, eff, err = Project(state, ev)
			if err != nil {
				return false, projector.Poison(ev.Sequence, err)
			}
			effects = append(effects, eff...)
		}
		plan := Compile(effects)
		if plan.Checkpoint == 0 {
			return false, nil // every event was at or below the checkpoint: nothing to write
		}
		if err := runPlan(ctx, tx, s.cfg.Name, plan); err != nil {
			return false, err
		}
		if s.beforeCommit != nil {
			if err := s.beforeCommit(ctx); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// inTx runs fn in an explicit write transaction, committed if fn returns true, rolled back
// otherwise. Explicit rather than managed transactions: the runner, not the driver, retries.
func (s *Sink) inTx(ctx context.Context, fn func(neo4j.ExplicitTransaction) (commit bool, err error)) error {
	session := s.driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: s.cfg.Database, AccessMode: neo4j.AccessModeWrite})
	defer session.Close(ctx)
	tx, err := session.BeginTransaction(ctx, neo4j.WithTxTimeout(s.cfg.TxTimeout),
		neo4j.WithTxMetadata(map[string]any{"app": "projector-neo4j"}))
	if err != nil {
		return err
	}
	defer tx.Close(ctx) // rolls back unless committed
	commit, err := fn(tx)
	if err != nil || !commit {
		return err
	}
	return tx.Commit(ctx)
}

// Checkpoint returns the stream sequence of the last event the graph holds (0 for none).
func (s *Sink) Checkpoint(ctx context.Context) (uint64, error) {
	res, err := neo4j.ExecuteQuery(ctx, s.driver, "MATCH (c:ProjectionCheckpoint {name: $name}) RETURN c.sequence AS sequence",
		map[string]any{"name": s.cfg.Name}, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(s.cfg.Database), neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return 0, fmt.Errorf("neo4jprojector: read checkpoint: %w", err)
	}
	if len(res.Records) == 0 {
		return 0, nil
	}
	seq, _, err := neo4j.GetRecordValue[int64](res.Records[0], "sequence")
	return uint64(seq), err
}

// detach returns a context that ends grace after parent does, so that work in flight when
// shutdown begins can finish.
func detach(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() { time.AfterFunc(grace, cancel) })
	return ctx, func() {
		stop()
		cancel()
	}
}

// decode decodes a batch; the first event that cannot be decoded, or whose subject names
// another resource, is a *projector.PoisonError.
func decode(batch []projector.Delivery) ([]SequencedEvent, error) {
	out := make([]SequencedEvent, 0, len(batch))
	for _, d := range batch {
		ev, err := resourcestore.DecodeMsg(d.Header, d.Data)
		if err != nil {
			return nil, projector.Poison(d.Sequence, err)
		}
		id := ev.Meta().AggregateID.String()
		if !strings.HasSuffix(d.Subject, "."+id) {
			return nil, projector.Poison(d.Sequence, fmt.Errorf("event of resource %s stored on subject %s", id, d.Subject))
		}
		out = append(out, SequencedEvent{Sequence: d.Sequence, Event: ev})
	}
	// The runner hands batches over in stream order; a batch out of order would have its older
	// events skipped below the checkpoint its newer ones moved.
	slices.SortFunc(out, func(a, b SequencedEvent) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out, nil
}

// isDataError reports whether Neo4j refused a statement for the values it was given (a
// constraint, a type or an argument error), as opposed to a failure of the server, the network,
// the credentials or of the statement's text.
func isDataError(err error) bool {
	var n4 *neo4j.Neo4jError
	if !errors.As(err, &n4) || n4.Classification() != "ClientError" {
		return false
	}
	switch n4.Category() {
	case "Schema":
		return n4.Title() == "ConstraintValidationFailed"
	case "Statement":
		switch n4.Title() {
		case "SyntaxError", "ParameterMissing", "ParameterNotProvided", "AccessMode", "NotSystemDatabaseError",
			"UnsupportedAdministrationCommand", "UnsupportedOperationError":
			return false
		}
		return true
	}
	return false
}
