package api

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultTimeout bounds one attempt of a request when no WithTimeout option is given.
const DefaultTimeout = 5 * time.Second

// maxBackoff bounds the pause between two attempts, however many retries are allowed.
const maxBackoff = 5 * time.Second

// ErrInvalidOption is wrapped by every error a ClientOption returns.
var ErrInvalidOption = errors.New("api: invalid client option")

// Client sends the command service's commands and queries over a NATS connection. It is safe
// for concurrent use.
//
// Every method returns an *Error when the request failed: the service's own error reply
// (decoded from its JSON body, or built from the micro error headers when the body is not
// JSON), or one the client builds when no reply came (Code 503, see KindNoResponders). Use
// errors.As to get it and Retryable to decide whether to send the same command again. A
// cancelled ctx is returned as the context's error, not as an *Error.
type Client struct {
	nc        *nats.Conn
	timeout   time.Duration
	retries   int
	backoff   time.Duration
	commandID func() string
	provider  trace.TracerProvider // nil: OpenTelemetry's global provider
	tracer    trace.Tracer
}

// instrumentationName names the client's tracer.
const instrumentationName = "github.com/cim-infra/registry/pkg/api"

// ClientOption configures a Client.
type ClientOption func(*Client) error

// WithTimeout bounds each attempt of a request (default DefaultTimeout). The ctx given to a
// method bounds all attempts together. Each attempt carries the end of its time-out (or ctx's
// deadline, if earlier) in the HeaderDeadline header, so that the service does not apply a
// command whose caller has stopped waiting.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %s is not positive", ErrInvalidOption, d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetries makes the client send a request up to n more times when it fails with a
// retryable error (see Retryable), with the same command_id, so a command is applied at most
// once. The default is no retry.
func WithRetries(n int) ClientOption {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("%w: retries %d is negative", ErrInvalidOption, n)
		}
		c.retries = n
		return nil
	}
}

// WithRetryBackoff sets the pause before the first retry (default 100ms); each further retry
// waits twice as long as the one before, up to 5s, plus up to 50% random jitter.
func WithRetryBackoff(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("%w: retry backoff %s is negative", ErrInvalidOption, d)
		}
		c.backoff = d
		return nil
	}
}

// WithCommandIDs replaces the source of the command ids the client fills in where a command
// has none (default uuid.NewString).
func WithCommandIDs(newID func() string) ClientOption {
	return func(c *Client) error {
		if newID == nil {
			return fmt.Errorf("%w: nil command id source", ErrInvalidOption)
		}
		c.commandID = newID
		return nil
	}
}

// WithTracerProvider makes the client start its request spans with tp rather than with
// OpenTelemetry's global tracer provider (otel.GetTracerProvider as NewClient finds it: a no-op
// until a program sets one, and a client made before that follows the first one set).
func WithTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *Client) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		c.provider = tp
		return nil
	}
}

// NewClient returns a client sending requests over nc.
func NewClient(nc *nats.Conn, opts ...ClientOption) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalidOption)
	}
	c := &Client{nc: nc, timeout: DefaultTimeout, backoff: 100 * time.Millisecond, commandID: uuid.NewString}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	// Once, not per request: a provider's Tracer takes a lock.
	c.tracer = c.provider.Tracer(instrumentationName)
	return c, nil
}

// Retryable reports whether err is an *Error with Code 503: the service or the store could not
// be reached, and sending the same command again, with the same command_id, is safe and may
// succeed. Any other *Error means the request itself must change first.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUnavailable
}

// commandEnvelope gives the client access to the envelope every command embeds, so that Do can
// fill in a missing command id whatever the command's type.
func (e *Envelope) commandEnvelope() *Envelope { return e }

type enveloped interface{ commandEnvelope() *Envelope }

// Do sends req as JSON to subject and decodes the reply into reply (unless reply is nil). When
// req is a pointer to a command with an empty command_id, Do fills one in first, so that its
// own retries, and the caller's with the same req, are safe; its first attempt then carries
// HeaderNewCommandID. A string in req that is not valid UTF-8 is an error before anything is
// sent: JSON text is UTF-8, and the service refuses it.
//
// Do starts a client span "publish <subject>" (see WithTracerProvider) that covers every
// attempt, with a "retry" event per attempt after the first, and sends its trace context in the
// W3C headers HeaderTraceparent and HeaderTracestate of every attempt: the service's spans, and
// those of the events the command writes, join the caller's trace.
func (c *Client) Do(ctx context.Context, subject string, req, reply any) (err error) {
	ctx, span := c.tracer.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindClient))
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.name", "publish"),
			attribute.String("messaging.operation.type", "send"), attribute.String("messaging.destination.name", subject))
	}
	defer func() {
		if err != nil && recording {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	var commandID string
	newID := false
	if cmd, ok := req.(enveloped); ok {
		env := cmd.commandEnvelope()
		if env.CommandID == "" {
			env.CommandID = c.commandID()
			newID = true
		}
		commandID = env.CommandID
		if recording {
			span.SetAttributes(attribute.String("cim.command_id", commandID), attribute.Bool("cim.command_id.new", newID))
		}
	}
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("api: encode request for %s: %w", subject, err)
	}
	// Retried: a Retryable error, at most c.retries times, after a doubling pause (backoffFor) with
	// jitter. The loop is the client's own: pkg/api is public and imports no internal package
	// (internal/retry), and its pauses have jitter, as many clients retry at once.
	for attempt := 0; ; attempt++ {
		err = c.attempt(ctx, subject, data, reply, newID && attempt == 0)
		if err == nil || !Retryable(err) || attempt >= c.retries || ctx.Err() != nil {
			break
		}
		if recording {
			span.AddEvent("retry", trace.WithAttributes(attribute.Int("cim.attempt", attempt+2), attribute.String("cim.error", err.Error())))
		}
		pause := backoffFor(c.backoff, attempt)
		pause += rand.N(pause/2 + 1)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	var e *Error
	if commandID != "" && errors.As(err, &e) && e.Code == CodeUnavailable {
		// The caller needs the id to retry later, and may not know it if the client chose it.
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		if _, ok := e.Details["command_id"]; !ok {
			e.Details["command_id"] = commandID
		}
	}
	return err
}

// attempt sends one request; newID says that its command id was made up for it and never sent.
func (c *Client) attempt(ctx context.Context, subject string, data []byte, reply any, newID bool) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// The service must not apply a command after its caller gave up on it: tell it when that is.
	deadline, _ := actx.Deadline()
	req := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{
		HeaderDeadline: []string{deadline.UTC().Format(time.RFC3339Nano)},
	}}
	if newID {
		req.Header[HeaderNewCommandID] = []string{"true"}
	}
	propagation.TraceContext{}.Inject(ctx, TraceCarrier(req.Header))
	msg, err := c.nc.RequestMsgWithContext(actx, req)
	if err != nil {
		return transportError(ctx, subject, err)
	}
	if msg.Header.Get(micro.ErrorCodeHeader) != "" {
		return decodeError(msg)
	}
	if reply == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, reply); err != nil {
		return fmt.Errorf("api: decode reply from %s: %w", subject, err)
	}
	return nil
}

// transportError turns a failed request into a retryable *Error wrapping its cause, or returns
// the caller's own cancellation as it is.
func transportError(ctx context.Context, subject string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("api: request to %s: %w", subject, ctx.Err())
	}
	var kind, msg string
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		kind, msg = KindNoResponders, "no instance of the "+serviceOf(subject)+" answers on "+subject
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		kind, msg = KindTimeout, "no reply on "+subject+" in time"
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting):
		kind, msg = KindDisconnected, "connection lost before the reply on "+subject
	default:
		return fmt.Errorf("api: request to %s: %w", subject, err)
	}
	return fmt.Errorf("%w: %w", &Error{Code: CodeUnavailable, Kind: kind, Message: msg}, err)
}

// serviceOf names the service that answers on subject: list, count and trace are the query
// service's, every other subject the command service's.
func serviceOf(subject string) string {
	for _, q := range Queries() {
		if subject == QuerySubject(q) {
			return "query service"
		}
	}
	return "command service"
}

// decodeError reads a micro error reply: the JSON body when it is an Error, else the headers.
func decodeError(msg *nats.Msg) *Error {
	description := msg.Header.Get(micro.ErrorHeader)
	code, err := strconv.Atoi(msg.Header.Get(micro.ErrorCodeHeader))
	if err != nil {
		code = CodeInternal
		description = fmt.Sprintf("%s (unreadable error code %q)", description, msg.Header.Get(micro.ErrorCodeHeader))
	}
	var e Error
	if json.Unmarshal(msg.Data, &e) != nil {
		e = Error{}
	}
	if e.Code == 0 {
		e.Code = code
	}
	if e.Kind == "" {
		e.Kind = kindOfCode(e.Code)
	}
	if e.Message == "" {
		e.Message = description
	}
	return &e
}

// kindOfCode names the class of a code, for error replies that carry no kind of their own.
func kindOfCode(code int) string {
	switch code {
	case CodeInvalid:
		return "invalid"
	case CodeNotFound:
		return "not_found"
	case CodeConflict:
		return "conflict"
	case CodeUnavailable:
		return "unavailable"
	default:
		return "error"
	}
}

func call[Reply any](ctx context.Context, c *Client, subject string, req any) (*Reply, error) {
	var reply Reply
	if err := c.Do(ctx, subject, req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// Register registers a resource.
func (c *Client) Register(ctx context.Context, cmd Register) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdRegister), &cmd)
}

// AssignOrganization assigns a resource to an organization.
func (c *Client) AssignOrganization(ctx context.Context, cmd AssignOrganization) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAssignOrganization), &cmd)
}

// AssignLocation assigns a resource to a location.
func (c *Client) AssignLocation(ctx context.Context, cmd AssignLocation) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAssignLocation), &cmd)
}

// AssignOwner assigns the person who owns a resource.
func (c *Client) AssignOwner(ctx context.Context, cmd AssignOwner) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAssignOwner), &cmd)
}

// AddPolicy attaches a policy to a resource.
func (c *Client) AddPolicy(ctx context.Context, cmd AddPolicy) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAddPolicy), &cmd)
}

// RemovePolicy detaches a policy from a resource.
func (c *Client) RemovePolicy(ctx context.Context, cmd RemovePolicy) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdRemovePolicy), &cmd)
}

// AssignAccountConcept links a resource to an account concept.
func (c *Client) AssignAccountConcept(ctx context.Context, cmd AssignAccountConcept) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAssignAccountConcept), &cmd)
}

// ClearAccountConcept removes a resource's account concept link.
func (c *Client) ClearAccountConcept(ctx context.Context, cmd ClearAccountConcept) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdClearAccountConcept), &cmd)
}

// SetHardwareDetails sets a resource's hardware facts.
func (c *Client) SetHardwareDetails(ctx context.Context, cmd SetHardwareDetails) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdSetHardwareDetails), &cmd)
}

// AssignAssetTag sets a resource's asset tag.
func (c *Client) AssignAssetTag(ctx context.Context, cmd AssignAssetTag) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdAssignAssetTag), &cmd)
}

// UpdateMetadata sets one metadata key of a resource.
func (c *Client) UpdateMetadata(ctx context.Context, cmd UpdateMetadata) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdUpdateMetadata), &cmd)
}

// ChangeStatus moves a resource to another status.
func (c *Client) ChangeStatus(ctx context.Context, cmd ChangeStatus) (*CommandReply, error) {
	return call[CommandReply](ctx, c, CommandSubject(CmdChangeStatus), &cmd)
}

// Get returns a resource's current state, or its state as of a sequence or a time.
func (c *Client) Get(ctx context.Context, q Get) (*Resource, error) {
	return call[Resource](ctx, c, QuerySubject(QueryGet), q)
}

// History returns one page of a resource's events.
func (c *Client) History(ctx context.Context, q History) (*HistoryPage, error) {
	return call[HistoryPage](ctx, c, QuerySubject(QueryHistory), q)
}

// AllHistory returns every event of a resource after q.AfterSequence, asking page after page
// of q.Limit events.
func (c *Client) AllHistory(ctx context.Context, q History) ([]HistoryEvent, error) {
	var events []HistoryEvent
	for {
		page, err := c.History(ctx, q)
		if err != nil {
			return events, err
		}
		events = append(events, page.Events...)
		if !page.More {
			return events, nil
		}
		if page.NextAfter <= q.AfterSequence {
			return events, fmt.Errorf("api: history of %s: page after %d says more follow but next_after is %d", q.AggregateID, q.AfterSequence, page.NextAfter)
		}
		q.AfterSequence = page.NextAfter
	}
}

// backoffFor is base doubled attempt times, capped at maxBackoff; doubling stops at the cap, so a
// large attempt count cannot overflow into a negative pause.
func backoffFor(base time.Duration, attempt int) time.Duration {
	pause := base
	for i := 0; i < attempt && pause < maxBackoff; i++ {
		pause *= 2
	}
	return min(pause, maxBackoff)
}
