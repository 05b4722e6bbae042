package commandservice

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// registerNamespace is the namespace of the aggregate ids the service derives for a Register
// without aggregate_id: uuid.NewSHA1(registerNamespace, command id). A retry of the same
// command id therefore names the same resource. Never change it.
var registerNamespace = uuid.MustParse("6f1d5c1e-3b0a-4d1e-9c55-2f8e7a4b9d10")

// strict is what json v2 adds to its defaults for a request: unknown members are refused.
// Its defaults do the rest: names match exactly (case included), a name given twice and
// invalid UTF-8 are refused, and nothing but white space may follow the object.
var strict = json.RejectUnknownMembers(true)

// decodeStrict decodes data, one JSON object, into v, strictly: see strict. Every error is an
// *api.Error that names the field at fault where there is one.
func decodeStrict(data []byte, maxBytes int, v any) error {
	trimmed := bytes.TrimLeft(data, jsonSpace)
	switch {
	case len(trimmed) == 0:
		return newError(api.CodeInvalid, api.KindEmptyRequest, "", "the request body is empty; send a JSON object")
	case len(data) > maxBytes:
		e := newError(api.CodeInvalid, api.KindRequestTooLarge, "", "the request body has %d bytes, at most %d are accepted", len(data), maxBytes)
		e.Details = map[string]any{"bytes": len(data), "max_bytes": maxBytes}
		return e
	}
	if err := json.Unmarshal(data, v, strict); err != nil {
		return jsonError(data, err)
	}
	if trimmed[0] == 'n' {
		// null decodes into a struct without error, leaving it as it was.
		return notAnObject("null")
	}
	return nil
}

// jsonSpace is the white space JSON allows between values.
const jsonSpace = " \t\r\n"

// jsonError explains an error of json.Unmarshal on data, naming the field at fault where there
// is one.
func jsonError(data []byte, err error) error {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &syntax):
		field := syntax.JSONPointer.LastToken()
		switch {
		case errors.Is(syntax.Err, jsontext.ErrDuplicateName):
			return newError(api.CodeInvalid, api.KindDuplicateField, field, "field %q appears more than once; give each field once", field)
		case errors.Is(syntax.Err, io.ErrUnexpectedEOF):
			return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body is truncated JSON")
		}
		if off := syntax.ByteOffset; off >= 0 && off < int64(len(data)) {
			if r, size := utf8.DecodeRune(data[off:]); r == utf8.RuneError && size <= 1 {
				if field == "" {
					return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body holds invalid UTF-8 (byte %#x at offset %d); JSON text is UTF-8", data[off], off)
				}
				return invalidField(field, "%s holds invalid UTF-8 (byte %#x at offset %d); JSON text is UTF-8", field, data[off], off)
			}
		}
		// field is where the syntax broke, when that is within a member.
		return newError(api.CodeInvalid, api.KindMalformedJSON, field, "the request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
	case errors.As(err, &semantic):
		if errors.Is(semantic.Err, json.ErrUnknownName) {
			name := semantic.JSONPointer.LastToken()
			return newError(api.CodeInvalid, api.KindUnknownField, name, "unknown field %q (names are case-sensitive)", name)
		}
		if semantic.JSONPointer == "" {
			return notAnObject(kindName(semantic.JSONKind))
		}
		field := semantic.JSONPointer.LastToken()
		want := expected(semantic.GoType)
		got := scalarAt(data, semantic.ByteOffset)
		if got == "" {
			got = kindName(semantic.JSONKind)
		}
		e := invalidField(field, "%s must be %s, not %s", field, want, got)
		e.Details = map[string]any{"expected": want, "got": got}
		return e
	}
	return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body cannot be decoded: %v", err)
}

// scalarAt returns the JSON number, string or literal that starts at data[off:], as written,
// if it is short enough to quote in an error message; else "".
func scalarAt(data []byte, off int64) string {
	if off < 0 || off >= int64(len(data)) {
		return ""
	}
	v, err := jsontext.NewDecoder(bytes.NewReader(data[off:])).ReadValue()
	if err != nil || len(v) > 64 || v.Kind() == '{' || v.Kind() == '[' {
		return ""
	}
	return string(v)
}

func notAnObject(got string) *api.Error {
	return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body must be a JSON object, not %s", got)
}

// kindName names a kind of JSON value for an error message.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	default:
		return "another JSON value"
	}
}

// expected says what a request field of Go type t accepts.
func expected(t reflect.Type) string {
	if t == nil {
		return "another JSON value"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		return `an RFC 3339 time such as "2026-01-02T15:04:05Z"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Uint64:
		return "a non-negative integer below 2^64"
	case reflect.Int:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "a " + t.Kind().String()
	}
}

// required returns an error naming field when v is empty.
func required(field, v string) error {
	if v == "" {
		return newError(api.CodeInvalid, api.KindMissingField, field, "%s is required", field)
	}
	return nil
}

// parseUUID parses a required UUID field; the nil UUID is refused.
func parseUUID(field, v string) (uuid.UUID, error) {
	if err := required(field, v); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, invalidField(field, "%s %q is not a UUID", field, shorten(v))
	}
	if id == uuid.Nil {
		return uuid.Nil, invalidField(field, "%s must not be the nil UUID", field)
	}
	return id, nil
}

// parseOptionalUUID parses a UUID field that may be absent (uuid.Nil).
func parseOptionalUUID(field, v string) (uuid.UUID, error) {
	if v == "" {
		return uuid.Nil, nil
	}
	return parseUUID(field, v)
}

// decoding is what a command's decoder is given besides the body, and what it tells back.
type decoding struct {
	now time.Time
	// ownID is set when the request carried its own command_id.
	ownID bool
}

// meta turns the envelope into the command's metadata, filling in what is missing: a new
// command id, the command id as correlation id, now as timestamp.
func meta(env api.Envelope, d *decoding) (cr.CommandMeta, error) {
	now := d.now
	var m cr.CommandMeta
	var err error
	if m.CommandID, err = parseOptionalUUID("command_id", env.CommandID); err != nil {
		return m, err
	}
	d.ownID = m.CommandID != uuid.Nil
	if m.CommandID == uuid.Nil {
		m.CommandID = uuid.New()
	}
	if m.CorrelationID, err = parseOptionalUUID("correlation_id", env.CorrelationID); err != nil {
		return m, err
	}
	if m.CorrelationID == uuid.Nil {
		m.CorrelationID = m.CommandID
	}
	if m.CausationID, err = parseOptionalUUID("causation_id", env.CausationID); err != nil {
		return m, err
	}
	switch {
	case env.Timestamp == nil:
		m.Timestamp = now.UTC()
	case env.Timestamp.IsZero():
		return m, invalidField("timestamp", "timestamp must not be the zero time")
	default:
		m.Timestamp = env.Timestamp.UTC()
	}
	return m, nil
}

// shorten keeps error messages readable when a client sends a huge value.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// commandDecoders decodes each command's request into its domain command.
var commandDecoders = map[string]func(data []byte, maxBytes int, d *decoding) (cr.Command, error){
	api.CmdRegister:             decodeRegister,
	api.CmdAssignOrganization:   decodeAssignOrganization,
	api.CmdAssignLocation:       decodeAssignLocation,
	api.CmdAssignOwner:          decodeAssignOwner,
	api.CmdAddPolicy:            decodeAddPolicy,
	api.CmdRemovePolicy:         decodeRemovePolicy,
	api.CmdAssignAccountConcept: decodeAssignAccountConcept,
	api.CmdClearAccountConcept:  decodeClearAccountConcept,
	api.CmdSetHardwareDetails:   decodeSetHardwareDetails,
	api.CmdAssignAssetTag:       decodeAssignAssetTag,
	api.CmdUpdateMetadata:       decodeUpdateMetadata,
	api.CmdChangeStatus:         decodeChangeStatus,
}

// decodeCommand decodes a command request and checks its own values (the domain's input
// rules, which need no state), so that invalid input is refused before any store round trip.
func decodeCommand(name string, data []byte, maxBytes int, now time.Time) (cr.Command, error) {
	cmd, _, err := decodeRequest(name, data, maxBytes, now)
	return cmd, err
}

// decodeRequest is decodeCommand that also reports whether the request carried its own
// command_id.
func decodeRequest(name string, data []byte, maxBytes int, now time.Time) (cmd cr.Command, ownID bool, err error) {
	decode, ok := commandDecoders[name]
	if !ok {
		return nil, false, newError(api.CodeInvalid, api.KindInvalidField, "", "unknown command %q", name)
	}
	d := decoding{now: now}
	cmd, err = decode(data, maxBytes, &d)
	if err != nil {
		return nil, false, err
	}
	// The domain checks the command's own values (Decide does the same first).
	if err := cr.Validate(cmd); err != nil {
		return nil, false, err
	}
	return cmd, d.ownID, nil
}

func decodeRegister(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.Register
	if err := decodeStrict(data, maxBytes, &req); err != nil {
		return nil, err
	}
	m, err := meta(req.Envelope, d)
	if err != nil {
		return nil, err
	}
	id, err := parseOptionalUUID("aggregate_id", req.AggregateID)
	if err != nil {
		return nil, err
	}
	if id == uuid.Nil {
		id = uuid.NewSHA1(registerNamespace, m.CommandID[:])
	}
	if err := required("hostname", req.Hostname); err != nil {
		return nil, err
	}
	host, err := cr.ParseHostname(req.Hostname)
	if err != nil {
		return nil, invalidField("hostname", "%v", err)
	}
	if err := required("resource_type", req.ResourceType); err != nil {
		return nil, err
	}
	typ, err := cr.ParseResourceType(req.ResourceType)
	if err != nil {
		return nil, invalidField("resource_type", "%v", err)
	}
	return cr.RegisterResource{Meta: m, ID: id, Hostname: host, Type: typ}, nil
}

// target decodes a request addressed to an existing resource into req and returns its
// metadata and aggregate id.
func target[T any](data []byte, maxBytes int, d *decoding, req *T, t func(*T) *api.Target) (cr.CommandMeta, uuid.UUID, error) {
	if err := decodeStrict(data, maxBytes, req); err != nil {
		return cr.CommandMeta{}, uuid.Nil, err
	}
	tg := t(req)
	m, err := meta(tg.Envelope, d)
	if err != nil {
		return m, uuid.Nil, err
	}
	id, err := parseUUID("aggregate_id", tg.AggregateID)
	return m, id, err
}

func decodeAssignOrganization(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AssignOrganization
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AssignOrganization) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("organization_id", req.OrganizationID)
	if err != nil {
		return nil, err
	}
	return cr.AssignOrganization{Meta: m, ID: id, OrganizationID: cr.OrganizationID(ref)}, nil
}

func decodeAssignLocation(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AssignLocation
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AssignLocation) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("location_id", req.LocationID)
	if err != nil {
		return nil, err
	}
	return cr.AssignLocation{Meta: m, ID: id, LocationID: cr.LocationID(ref)}, nil
}

func decodeAssignOwner(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AssignOwner
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AssignOwner) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("owner_id", req.OwnerID)
	if err != nil {
		return nil, err
	}
	return cr.AssignOwner{Meta: m, ID: id, OwnerID: cr.PersonID(ref)}, nil
}

func decodeAddPolicy(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AddPolicy
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AddPolicy) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("policy_id", req.PolicyID)
	if err != nil {
		return nil, err
	}
	return cr.AddPolicy{Meta: m, ID: id, PolicyID: cr.PolicyID(ref)}, nil
}

func decodeRemovePolicy(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.RemovePolicy
	m, id, err := target(data, maxBytes, d, &req, func(r *api.RemovePolicy) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("policy_id", req.PolicyID)
	if err != nil {
		return nil, err
	}
	return cr.RemovePolicy{Meta: m, ID: id, PolicyID: cr.PolicyID(ref)}, nil
}

func decodeAssignAccountConcept(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AssignAccountConcept
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AssignAccountConcept) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	ref, err := parseUUID("concept_id", req.ConceptID)
	if err != nil {
		return nil, err
	}
	return cr.AssignAccountConcept{Meta: m, ID: id, ConceptID: cr.AccountConceptID(ref)}, nil
}

func decodeClearAccountConcept(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.ClearAccountConcept
	m, id, err := target(data, maxBytes, d, &req, func(r *api.ClearAccountConcept) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	return cr.ClearAccountConcept{Meta: m, ID: id}, nil
}

func decodeSetHardwareDetails(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.SetHardwareDetails
	m, id, err := target(data, maxBytes, d, &req, func(r *api.SetHardwareDetails) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	if req.Manufacturer == nil && req.Model == nil && req.SerialNumber == nil {
		return nil, newError(api.CodeInvalid, api.KindMissingField, "manufacturer",
			"at least one of manufacturer, model and serial_number is required")
	}
	return cr.SetHardwareDetails{Meta: m, ID: id, Manufacturer: req.Manufacturer, Model: req.Model, SerialNumber: req.SerialNumber}, nil
}

func decodeAssignAssetTag(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.AssignAssetTag
	m, id, err := target(data, maxBytes, d, &req, func(r *api.AssignAssetTag) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	if err := required("asset_tag", req.AssetTag); err != nil {
		return nil, err
	}
	return cr.AssignAssetTag{Meta: m, ID: id, AssetTag: req.AssetTag}, nil
}

func decodeUpdateMetadata(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.UpdateMetadata
	m, id, err := target(data, maxBytes, d, &req, func(r *api.UpdateMetadata) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	if err := required("key", req.Key); err != nil {
		return nil, err
	}
	// An empty value is allowed: the domain accepts it.
	return cr.UpdateMetadata{Meta: m, ID: id, Key: req.Key, Value: req.Value}, nil
}

func decodeChangeStatus(data []byte, maxBytes int, d *decoding) (cr.Command, error) {
	var req api.ChangeStatus
	m, id, err := target(data, maxBytes, d, &req, func(r *api.ChangeStatus) *api.Target { return &r.Target })
	if err != nil {
		return nil, err
	}
	if err := required("status", req.Status); err != nil {
		return nil, err
	}
	to, err := cr.ParseStatus(req.Status)
	if err != nil {
		return nil, invalidField("status", "%v", err)
	}
	return cr.ChangeStatus{Meta: m, ID: id, To: to}, nil
}

// decodeGet decodes a get query.
func decodeGet(data []byte, maxBytes int) (api.Get, uuid.UUID, error) {
	var q api.Get
	if err := decodeStrict(data, maxBytes, &q); err != nil {
		return q, uuid.Nil, err
	}
	id, err := parseUUID("aggregate_id", q.AggregateID)
	if err != nil {
		return q, uuid.Nil, err
	}
	if q.AsOfTime != nil && q.AsOfTime.IsZero() {
		return q, uuid.Nil, invalidField("as_of_time", "as_of_time must not be the zero time")
	}
	return q, id, nil
}

// History page sizes.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// decodeHistory decodes a history query, with the default page size filled in.
func decodeHistory(data []byte, maxBytes int) (api.History, uuid.UUID, error) {
	var q api.History
	if err := decodeStrict(data, maxBytes, &q); err != nil {
		return q, uuid.Nil, err
	}
	id, err := parseUUID("aggregate_id", q.AggregateID)
	if err != nil {
		return q, uuid.Nil, err
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultHistoryLimit
	case q.Limit < 0 || q.Limit > MaxHistoryLimit:
		return q, uuid.Nil, invalidField("limit", "limit %d is out of range: 1 to %d (default %d)", q.Limit, MaxHistoryLimit, DefaultHistoryLimit)
	}
	return q, id, nil
}
