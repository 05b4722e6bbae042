package queryservice

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

func newError(code int, kind, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidField(field, format string, args ...any) *api.Error {
	return newError(api.CodeInvalid, api.KindInvalidField, field, format, args...)
}

func missingField(field, format string, args ...any) *api.Error {
	return newError(api.CodeInvalid, api.KindMissingField, field, format, args...)
}

// toReply classifies an error of request processing as its wire reply.
func toReply(err error) *api.Error {
	var reply *api.Error
	if errors.As(err, &reply) {
		return reply
	}
	return newError(api.CodeInternal, api.KindInternal, "", "%v", err)
}

// shorten bounds a value quoted back in an error message.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// decodeStrict decodes data, one JSON object, into v: names match exactly (a name in another
// case is unknown), unknown and duplicate names are refused, as are invalid UTF-8 and trailing
// data. Each refusal is a 400 naming the member at fault.
func decodeStrict(data []byte, maxBytes int, v any) error {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return newError(api.CodeInvalid, api.KindEmptyRequest, "", "the request body is empty; send a JSON object")
	case len(data) > maxBytes:
		e := newError(api.CodeInvalid, api.KindRequestTooLarge, "", "the request body has %d bytes, at most %d are accepted", len(data), maxBytes)
		e.Details = map[string]any{"bytes": len(data), "max_bytes": maxBytes}
		return e
	}
	err := json.Unmarshal(data, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		name := syn.JSONPointer.LastToken()
		return newError(api.CodeInvalid, api.KindDuplicateField, name, "field %q appears more than once", name)
	case errors.As(err, &syn):
		return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body is not valid JSON: %v", syn)
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		name := sem.JSONPointer.LastToken()
		return newError(api.CodeInvalid, api.KindUnknownField, name, "unknown field %q (names are case-sensitive)", name)
	case errors.As(err, &sem):
		field := topField(sem.JSONPointer)
		if field == "" {
			return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body must be a JSON object: %v", sem)
		}
		e := invalidField(field, "%s: %v", field, sem)
		if sem.JSONKind != 0 {
			e.Details = map[string]any{"got": sem.JSONKind.String()}
		}
		return e
	}
	return newError(api.CodeInvalid, api.KindMalformedJSON, "", "the request body cannot be decoded: %v", err)
}

// topField is the request field a JSON pointer is in ("/status/1" is in "status").
func topField(p jsontext.Pointer) string {
	for tok := range p.Tokens() {
		return tok
	}
	return ""
}
