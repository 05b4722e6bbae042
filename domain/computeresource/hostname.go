package computeresource

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Hostname is an RFC 1123 host name, stored lower-case without a trailing dot. The only
// way to obtain a non-zero Hostname is ParseHostname (or UnmarshalText), so a Hostname
// is always valid.
//
// Upstream's bugs are fixed here: only the last (top-level) label may not be all digits,
// so "web.123.example.com" is valid while "10.0.0.1" is not (it is an address, not a
// name); names are case-insensitive and stored lower-case; one trailing dot (the fully
// qualified form) is accepted and dropped.
type Hostname struct {
	name string
}

// Bounds of RFC 1123 host names.
const (
	MaxHostnameLength = 253
	MaxLabelLength    = 63
)

// HostnameError says why a string is not a hostname. It matches ErrInvalidHostname
// (and so ErrInvalidInput).
type HostnameError struct {
	Input  string
	Reason string
}

func (e *HostnameError) Error() string {
	return fmt.Sprintf("%v %q: %s", ErrInvalidHostname, shorten(e.Input), e.Reason)
}

// Is makes a *HostnameError match ErrInvalidHostname and ErrInvalidInput.
func (e *HostnameError) Is(target error) bool {
	return target == ErrInvalidHostname || target == ErrInvalidInput
}

// ParseHostname validates s as an RFC 1123 host name and returns it in canonical form
// (lower-case, trailing dot dropped).
func ParseHostname(s string) (Hostname, error) {
	fail := func(format string, args ...any) (Hostname, error) {
		return Hostname{}, &HostnameError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return fail("must not be empty")
	}
	// Characters first, so that the lengths below, in bytes, are in characters too.
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fail("byte %#x at offset %d is not UTF-8: only ASCII letters, digits, '-' and '.' are allowed", name[i], i)
		case r >= utf8.RuneSelf || r != '.' && !isHostnameChar(byte(r)):
			label := name[strings.LastIndexByte(name[:i], '.')+1:]
			label, _, _ = strings.Cut(label, ".")
			return fail("label %q contains %q: only ASCII letters, digits and '-' are allowed", shorten(label), r)
		}
		i += size
	}
	if len(name) > MaxHostnameLength {
		return fail("is %d characters long, at most %d allowed", len(name), MaxHostnameLength)
	}
	labels := strings.Split(name, ".")
	for i, label := range labels {
		if label == "" {
			return fail("label %d is empty", i+1)
		}
		if len(label) > MaxLabelLength {
			return fail("label %q is %d characters long, at most %d allowed", shorten(label), len(label), MaxLabelLength)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fail("label %q starts or ends with '-'", label)
		}
	}
	if last := labels[len(labels)-1]; allDigits(last) {
		return fail("the top-level label %q is all digits", last)
	}
	return Hostname{name: strings.ToLower(name)}, nil
}

func isHostnameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the canonical host name ("" for the zero Hostname).
func (h Hostname) String() string { return h.name }

// IsZero reports whether h is the zero Hostname (no host name).
func (h Hostname) IsZero() bool { return h.name == "" }

// MarshalText implements encoding.TextMarshaler; the zero Hostname is an error.
func (h Hostname) MarshalText() ([]byte, error) {
	if h.name == "" {
		return nil, &HostnameError{Reason: "must not be empty"}
	}
	return []byte(h.name), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseHostname.
func (h *Hostname) UnmarshalText(b []byte) (err error) {
	*h, err = ParseHostname(string(b))
	return err
}
