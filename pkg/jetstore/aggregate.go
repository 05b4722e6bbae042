package jetstore

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxTokenLength bounds the length in bytes of an aggregate type or id.
const MaxTokenLength = 128

// AggregateRef names one aggregate: its type (e.g. "order") and its id. Each aggregate is one
// subject in the stream, <prefix>.<type>.<id>, so both are single subject tokens.
type AggregateRef struct {
	// Type is the aggregate type, one subject token.
	Type string
	// ID is the aggregate id, one subject token.
	ID string
}

// String returns "type/id".
func (a AggregateRef) String() string { return a.Type + "/" + a.ID }

// Validate reports, wrapping ErrInvalidAggregate, whether Type or ID cannot be a subject token:
// empty, longer than MaxTokenLength, not UTF-8, or containing '.', '*', '>', white space or
// control characters.
func (a AggregateRef) Validate() error {
	if err := validateToken(a.Type); err != nil {
		return fmt.Errorf("%w: type %q: %s", ErrInvalidAggregate, a.Type, err)
	}
	if err := validateToken(a.ID); err != nil {
		return fmt.Errorf("%w: id %q: %s", ErrInvalidAggregate, a.ID, err)
	}
	return nil
}

// subject returns <prefix>.<type>.<id>; a must be valid.
func (a AggregateRef) subject(prefix string) string { return prefix + "." + a.Type + "." + a.ID }

// tokenProblem is a reason why a string is not a valid subject token.
type tokenProblem string

func (p tokenProblem) Error() string { return string(p) }

func validateToken(tok string) error {
	switch {
	case tok == "":
		return tokenProblem("empty")
	case len(tok) > MaxTokenLength:
		return tokenProblem(fmt.Sprintf("longer than %d bytes", MaxTokenLength))
	case !utf8.ValidString(tok):
		return tokenProblem("not valid UTF-8")
	}
	for _, r := range tok {
		switch {
		case r == '.':
			return tokenProblem("contains '.'")
		case r == '*' || r == '>':
			return tokenProblem(fmt.Sprintf("contains wildcard %q", r))
		case unicode.IsSpace(r):
			return tokenProblem("contains white space")
		case unicode.IsControl(r) || r == utf8.RuneError:
			return tokenProblem("contains a control character")
		}
	}
	return nil
}
