package computeresource

import (
	"errors"
	"strings"
	"testing"
)

// TestFreeTextRule checks that every free-text field of every command follows the one rule:
// printable characters only (no control, format or non-ASCII space character, no invalid
// UTF-8), within its bounds counted in characters.
func TestFreeTextRule(t *testing.T) {
	t.Parallel()
	s := richState(t, StatusActive)
	fields := []struct {
		name     string
		min, max int
		cmd      func(v string) Command
	}{
		{"manufacturer", 1, MaxHardwareFieldLength, func(v string) Command {
			return SetHardwareDetails{Meta: meta("m" + v), ID: resID, Manufacturer: &v}
		}},
		{"model", 1, MaxHardwareFieldLength, func(v string) Command {
			return SetHardwareDetails{Meta: meta("o" + v), ID: resID, Model: &v}
		}},
		{"serial_number", 1, MaxHardwareFieldLength, func(v string) Command {
			return SetHardwareDetails{Meta: meta("s" + v), ID: resID, SerialNumber: &v}
		}},
		{"asset_tag", 1, MaxAssetTagLength, func(v string) Command {
			return AssignAssetTag{Meta: meta("a" + v), ID: resID, AssetTag: v}
		}},
		{"metadata_value", 0, MaxMetadataValueLength, func(v string) Command {
			return UpdateMetadata{Meta: meta("v" + v), ID: resID, Key: "k", Value: v}
		}},
	}
	refused := []string{
		"a\x00b",           // NUL
		"\x1b[31mred",      // ESC: a terminal colour sequence
		"\x1b]0;title\x07", // ESC and BEL: a terminal title sequence
		"line\nbreak", "cr\rhere", "tab\there", "bs\bhere", "del\x7f",
		"c1\u0085", "ls\u2028", "ps\u2029", // C1 next line, line and paragraph separators
		"rlo\u202eevil", "zw\u200bsp", "bom\ufeff", // format characters
		"nb\u00a0sp", "ideo\u3000sp", // spaces other than U+0020
		"raw\xff", "\xc3(", "\xed\xa0\x80", // invalid UTF-8, a surrogate included
	}
	accepted := []string{"R&D <lab> \"quoted\" \\ / ünïcode 中文 😀", "a b", "PowerEdge R740xd"}
	for _, f := range fields {
		for _, v := range refused {
			_, err := Decide(s, f.cmd(v))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != f.name || !strings.Contains(fe.Reason, "printable characters") {
				t.Errorf("%s %q: %v, want a *FieldError on %s", f.name, v, err, f.name)
			}
		}
		for _, v := range append(accepted, strings.Repeat("é", f.max), strings.Repeat("x", f.min)) {
			if f.min == 0 && v == "" {
				continue // the state's value may already be ""; Validate says if it is allowed
			}
			if err := Validate(f.cmd(v)); err != nil {
				t.Errorf("%s %q: refused: %v", f.name, shorten(v), err)
			}
		}
		if err := Validate(f.cmd(strings.Repeat("é", f.max+1))); err == nil {
			t.Errorf("%s: %d characters accepted, at most %d allowed", f.name, f.max+1, f.max)
		}
		if f.min == 0 {
			if err := Validate(f.cmd("")); err != nil {
				t.Errorf("%s: empty value refused: %v", f.name, err)
			}
		}
	}
}
