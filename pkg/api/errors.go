package api

import "fmt"

// Error codes, by class, in the micro error headers (Nats-Service-Error-Code) and in the
// body's "code".
const (
	CodeInvalid     = 400 // the request is malformed or a value is invalid; do not retry as is
	CodeNotFound    = 404 // no resource with that id
	CodeConflict    = 409 // a rule of the domain refused it, or a concurrency conflict persisted
	CodeUnavailable = 503 // the event store could not be reached in time; retry with the same command_id
	CodeInternal    = 500 // a bug; the message says what
)

// Error is the JSON body of a failed reply.
type Error struct {
	Code int `json:"code"`
	// Kind is a stable machine-readable name of the reason, such as "invalid_field",
	// "not_registered", "invalid_transition" or "concurrency".
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Field names the request field at fault, for invalid input.
	Field string `json:"field,omitempty"`
	// Details carries reason-specific data (for example "from" and "to" of a transition).
	Details map[string]any `json:"details,omitempty"`
}

// Error implements error, so a client can return the reply body as its error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s (field %s)", e.Code, e.Kind, e.Message, e.Field)
	}
	return fmt.Sprintf("%d %s: %s", e.Code, e.Kind, e.Message)
}
