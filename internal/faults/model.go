package faults

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// Outcome classes of one client operation on an aggregate, as the client saw them.
const (
	// OutcomeOK: the command was applied (or found already applied); Events lists what it
	// wrote, empty when it changed nothing.
	OutcomeOK = "ok"
	// OutcomeRefused: a rule of the domain refused the command (Kind names which), or a key
	// its events would claim is held by another resource (Kind KindHostnameTaken or
	// KindAssetTagTaken); nothing was written.
	OutcomeRefused = "refused"
	// OutcomeConflict: concurrency conflicts persisted after the service's retries; nothing
	// was written by this request.
	OutcomeConflict = "conflict"
	// OutcomeUnknown: no definite reply (timeout, 503, lost connection): the command may or may
	// not have been applied, at any time after it was sent.
	OutcomeUnknown = "unknown"
	// OutcomeRead: a get returned the state in State (a Digest).
	OutcomeRead = "read"
	// OutcomeNotFound: a get said the resource does not exist.
	OutcomeNotFound = "not_found"
)

// Input is what a client asked: a command, or a read of the current state when Command is
// nil.
type Input struct {
	Command cr.Command
}

// Output is what the client got back.
type Output struct {
	Outcome string
	// Events are the types of the events the command wrote (OutcomeOK).
	Events []string
	// Kind is the error kind of a refusal (OutcomeRefused), as the wire contract names it.
	Kind string
	// State is the digest of the state a read returned (OutcomeRead).
	State string
}

// Op is one operation of a client history, for porcupine: Call and Return are monotonic
// nanoseconds; Return is Forever for an operation whose outcome is unknown.
type Op struct {
	Client    int
	Aggregate uuid.UUID
	Input     Input
	Output    Output
	Call      int64
	Return    int64
}

// The refusals of a command whose events would claim a key another resource holds, as the wire
// contract names them (api.KindHostnameTaken, api.KindAssetTagTaken). Whether a key is free is
// not state of the aggregate: the model accepts such a refusal wherever the command would have
// written events, and the key checks of the final stream judge the keys themselves.
const (
	KindHostnameTaken = "hostname_taken"
	KindAssetTagTaken = "asset_tag_taken"
)

// Forever is the return time of an operation that never returned a definite answer: it may
// take effect at any point after its call.
const Forever = int64(1<<63 - 1)

// RuleKind names the refusal a domain error stands for, as the command service's wire contract
// does (api.Error.Kind); "" for errors that are not refusals by a rule.
func RuleKind(err error) string {
	var transition *cr.TransitionError
	var activation *cr.ActivationError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, cr.ErrNotRegistered):
		return "not_registered"
	case errors.As(err, &transition):
		return "invalid_transition"
	case errors.As(err, &activation):
		return "activation_precondition"
	case errors.Is(err, cr.ErrAlreadyRegistered):
		return "already_registered"
	case errors.Is(err, cr.ErrDecommissioned):
		return "decommissioned"
	case errors.Is(err, cr.ErrPolicyAlreadyAdded):
		return "policy_already_added"
	case errors.Is(err, cr.ErrPolicyNotFound):
		return "policy_not_found"
	}
	return "other:" + err.Error()
}

// modelState is an aggregate's state with its digest, computed once.
type modelState struct {
	state  cr.State
	digest string
}

func newModelState(s cr.State) modelState { return modelState{state: s, digest: Digest(s)} }

// AggregateModel is the sequential specification of one aggregate for porcupine: the
// domain's own Decide and Apply. A command with a definite outcome must be decided exactly so
// at its linearization point; a command with an unknown outcome either took effect there
// (whatever Decide says it does) or never did; a read returns the state at its point.
func AggregateModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partitionByAggregate,
		Init:      func() []any { return []any{newModelState(cr.State{})} },
		Step: func(state, input, output any) []any {
			s := state.(modelState)
			return step(s, input.(Input), output.(Output))
		},
		Equal: func(a, b any) bool { return a.(modelState).digest == b.(modelState).digest },
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(state.(modelState).digest))
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			return describe(input.(Input), output.(Output))
		},
		DescribeState: func(state any) string { return state.(modelState).digest },
	}
	return nm.ToModel()
}

func step(s modelState, in Input, out Output) []any {
	if in.Command == nil {
		switch out.Outcome {
		case OutcomeRead:
			if s.state.Registered() && out.State == s.digest {
				return []any{s}
			}
		case OutcomeNotFound:
			if !s.state.Registered() {
				return []any{s}
			}
		}
		return nil
	}
	events, err := cr.Decide(s.state, in.Command)
	switch out.Outcome {
	case OutcomeOK:
		if err != nil || !slices.Equal(eventTypes(events), out.Events) {
			return nil
		}
		if len(events) == 0 {
			return []any{s}
		}
		return []any{newModelState(cr.Fold(s.state, events...))}
	case OutcomeRefused:
		if err != nil && RuleKind(err) == out.Kind {
			return []any{s}
		}
		// The service decides first and claims the keys of the events it decided: a key held
		// elsewhere refuses only a command that would have written events claiming it.
		if err == nil && out.Kind == keyTakenKind(s.state, events) {
			return []any{s}
		}
		return nil
	case OutcomeConflict:
		return []any{s}
	case OutcomeUnknown:
		if err != nil || len(events) == 0 {
			return []any{s}
		}
		return []any{s, newModelState(cr.Fold(s.state, events...))}
	}
	return nil
}

// keyTakenKind is the refusal a command deciding events in state s gets when one of the keys
// they claim is held elsewhere: hostname_taken if they claim a hostname, else asset_tag_taken
// if they claim an asset tag, else "" (they claim nothing, so nothing can be taken).
func keyTakenKind(s cr.State, events []cr.Event) string {
	kind := ""
	for _, k := range cr.KeyChanges(s, events) {
		switch {
		case k.Release:
		case k.Space == cr.KeySpaceHostname:
			return KindHostnameTaken
		case k.Space == cr.KeySpaceAssetTag:
			kind = KindAssetTagTaken
		}
	}
	return kind
}

func eventTypes(events []cr.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventType()
	}
	return out
}

func partitionByAggregate(history []porcupine.Operation) [][]porcupine.Operation {
	byID := map[uuid.UUID][]porcupine.Operation{}
	var order []uuid.UUID
	for _, op := range history {
		id := op.Metadata.(uuid.UUID)
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, id := range order {
		out = append(out, byID[id])
	}
	return out
}

// Operations converts ops to porcupine's form; the aggregate id travels as Metadata, which the
// partition function reads.
func Operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		out[i] = porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output,
			Call: op.Call, Return: op.Return, Metadata: op.Aggregate}
	}
	return out
}

func describe(in Input, out Output) string {
	var b strings.Builder
	if in.Command == nil {
		b.WriteString("get")
	} else {
		fmt.Fprintf(&b, "%s[%s]", in.Command.CommandName(), in.Command.Metadata().CommandID.String()[:8])
		if c, ok := in.Command.(cr.ChangeStatus); ok {
			fmt.Fprintf(&b, "(%s)", c.To)
		}
		if c, ok := in.Command.(cr.AddPolicy); ok {
			fmt.Fprintf(&b, "(%s)", uuid.UUID(c.PolicyID).String()[:8])
		}
		if c, ok := in.Command.(cr.RemovePolicy); ok {
			fmt.Fprintf(&b, "(%s)", uuid.UUID(c.PolicyID).String()[:8])
		}
		if c, ok := in.Command.(cr.RegisterResource); ok {
			fmt.Fprintf(&b, "(%s)", c.Hostname)
		}
		if c, ok := in.Command.(cr.AssignAssetTag); ok {
			fmt.Fprintf(&b, "(%s)", c.AssetTag)
		}
	}
	b.WriteString(" -> ")
	switch out.Outcome {
	case OutcomeOK:
		fmt.Fprintf(&b, "ok%v", out.Events)
	case OutcomeRefused:
		b.WriteString(out.Kind)
	case OutcomeRead:
		b.WriteString("read")
	default:
		b.WriteString(out.Outcome)
	}
	return b.String()
}

// Digest renders every value of a state in one canonical string: two states are equal exactly
// when their digests are. ResourceDigest renders a get's reply the same way.
func Digest(s cr.State) string {
	if !s.Registered() {
		return "unregistered"
	}
	f := digestFields{
		id: s.ID().String(), hostname: s.Hostname().String(), typ: s.Type().String(), status: s.Status().String(),
		metadata: s.Metadata(), created: s.CreatedAt(), updated: s.UpdatedAt(),
	}
	if v, ok := s.OrganizationID(); ok {
		f.org = uuid.UUID(v).String()
	}
	if v, ok := s.LocationID(); ok {
		f.loc = uuid.UUID(v).String()
	}
	if v, ok := s.OwnerID(); ok {
		f.owner = uuid.UUID(v).String()
	}
	if v, ok := s.AccountConceptID(); ok {
		f.concept = uuid.UUID(v).String()
	}
	for _, p := range s.Policies() {
		f.policies = append(f.policies, uuid.UUID(p).String())
	}
	f.manufacturer, _ = s.Manufacturer()
	f.model, _ = s.Model()
	f.serial, _ = s.SerialNumber()
	f.assetTag, _ = s.AssetTag()
	return f.String()
}

// ResourceFields are the values of a get reply that Digest covers (api.Resource's).
type ResourceFields struct {
	ID, Hostname, ResourceType, Status                  string
	OrganizationID, LocationID, OwnerID, AccountConcept string
	Policies                                            []string
	Manufacturer, Model, SerialNumber, AssetTag         string
	Metadata                                            map[string]string
	CreatedAt, UpdatedAt                                time.Time
}

// ResourceDigest renders a get's reply as Digest renders a state.
func ResourceDigest(r ResourceFields) string {
	return digestFields{
		id: r.ID, hostname: r.Hostname, typ: r.ResourceType, status: r.Status,
		org: r.OrganizationID, loc: r.LocationID, owner: r.OwnerID, concept: r.AccountConcept,
		policies: slices.Clone(r.Policies), manufacturer: r.Manufacturer, model: r.Model,
		serial: r.SerialNumber, assetTag: r.AssetTag, metadata: r.Metadata,
		created: r.CreatedAt, updated: r.UpdatedAt,
	}.String()
}

type digestFields struct {
	id, hostname, typ, status, org, loc, owner, concept string
	policies                                            []string
	manufacturer, model, serial, assetTag               string
	metadata                                            map[string]string
	created, updated                                    time.Time
}

func (f digestFields) String() string {
	slices.Sort(f.policies)
	var b strings.Builder
	fmt.Fprintf(&b, "id=%s host=%s type=%s status=%s org=%s loc=%s owner=%s concept=%s policies=%v hw=%q/%q/%q tag=%q",
		f.id, f.hostname, f.typ, f.status, f.org, f.loc, f.owner, f.concept, f.policies,
		f.manufacturer, f.model, f.serial, f.assetTag)
	for _, k := range slices.Sorted(maps.Keys(f.metadata)) {
		fmt.Fprintf(&b, " meta[%q]=%q", k, f.metadata[k])
	}
	fmt.Fprintf(&b, " created=%s updated=%s", f.created.UTC().Format(time.RFC3339Nano), f.updated.UTC().Format(time.RFC3339Nano))
	return b.String()
}
