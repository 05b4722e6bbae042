package computeresource

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Free text is every command value that is neither an id, nor a name from a fixed set, nor a
// hostname: manufacturer, model, serial number, asset tag and metadata value. One rule holds
// for all of it: valid UTF-8 made of printable characters only (unicode.IsPrint: letters,
// marks, numbers, punctuation, symbols and the ASCII space), so no control character (NUL,
// ESC, newline, tab...), no other space and no format character (such as U+202E, which
// reverses the text around it); and a number of characters within the field's bounds.
// Metadata keys are stricter: see MetadataKeyCharacters.

// Bounds of free-text inputs, in characters.
const (
	MaxAssetTagLength      = 64
	MaxHardwareFieldLength = 256
	MaxMetadataValueLength = 4096 // an empty value is allowed
)

// checkText applies the rule of free text to the value v of field: printable characters only,
// from min to max of them.
func checkText(field, v string, min, max int) error {
	// The reason is only built for a refusal: this runs for every command that sets a value.
	fail := func(detail string) error {
		bounds := fmt.Sprintf("%d-%d", min, max)
		if min == 0 {
			bounds = fmt.Sprintf("at most %d", max)
		}
		return &FieldError{Field: field, Value: v, Reason: "must be " + bounds + " printable characters" + detail}
	}
	if !utf8.ValidString(v) {
		return fail(" (not valid UTF-8)")
	}
	n := 0
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fail(fmt.Sprintf(" (contains %U)", r))
		}
		n++
	}
	if n < min || n > max {
		return fail(fmt.Sprintf(" (has %d)", n))
	}
	return nil
}
