package computeresource

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

func TestParseHostname(t *testing.T) {
	t.Parallel()
	label63 := strings.Repeat("a", 63)
	long253 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".")
	valid := map[string]string{
		"server-01":              "server-01",
		"Web-01.Example.COM":     "web-01.example.com",  // stored lower-case
		"web.example.com.":       "web.example.com",     // one trailing dot dropped
		"web.123.example.com":    "web.123.example.com", // upstream refused inner numeric labels
		"123.example.com":        "123.example.com",
		"1a":                     "1a",
		"a":                      "a",
		"x--y":                   "x--y",
		label63 + ".com":         label63 + ".com",
		long253:                  long253,
		"10.0.0.1.example.local": "10.0.0.1.example.local",
	}
	for in, want := range valid {
		h, err := ParseHostname(in)
		if err != nil || h.String() != want {
			t.Errorf("ParseHostname(%q) = %q, %v; want %q", in, h, err, want)
		}
	}
	invalid := map[string]string{
		"":                         "empty",
		".":                        "empty",
		"web..example":             "label 2 is empty",
		".web":                     "label 1 is empty",
		"web.example.com..":        "empty",
		"-web":                     "starts or ends with '-'",
		"web-":                     "starts or ends with '-'",
		"web_01":                   "'_'",
		"wéb":                      "only ASCII letters",
		"web.exämple.com":          `label "exämple" contains 'ä'`,
		"😀.example.com":            `label "😀" contains '😀'`,
		"web.ex\xffample.com":      "byte 0xff at offset 6 is not UTF-8",
		"web 01":                   "' '",
		"10.0.0.1":                 "top-level label \"1\" is all digits",
		"123":                      "all digits",
		"web.example.123":          "all digits",
		label63 + "a.com":          "64 characters long, at most 63",
		long253 + "c":              "254 characters long, at most 253",
		"web.example.com.\x00":     `label "\x00" contains '\x00'`,
		"web/path":                 "'/'",
		strings.Repeat("a.", 127):  "", // 253 characters + dot: valid length, checked below
		strings.Repeat("ab.", 100): "at most 253",
	}
	delete(invalid, strings.Repeat("a.", 127))
	for in, why := range invalid {
		_, err := ParseHostname(in)
		if !errors.Is(err, ErrInvalidHostname) || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseHostname(%q) error %v, want ErrInvalidHostname", in, err)
			continue
		}
		var he *HostnameError
		if !errors.As(err, &he) || he.Input != in || he.Reason == "" {
			t.Errorf("ParseHostname(%q): %#v", in, he)
		}
		if !strings.Contains(err.Error(), why) {
			t.Errorf("ParseHostname(%q) = %q, want it to mention %q", in, err, why)
		}
	}
}

func TestHostnameText(t *testing.T) {
	t.Parallel()
	var h Hostname
	if _, err := h.MarshalText(); !errors.Is(err, ErrInvalidHostname) {
		t.Errorf("zero Hostname marshals: %v", err)
	}
	if err := json.Unmarshal([]byte(`"DB.Example.org."`), &h); err != nil || h.String() != "db.example.org" {
		t.Fatalf("unmarshal: %q %v", h, err)
	}
	b, err := json.Marshal(h)
	if err != nil || string(b) != `"db.example.org"` {
		t.Errorf("marshal: %s %v", b, err)
	}
	if err := json.Unmarshal([]byte(`"bad_host"`), &h); !errors.Is(err, ErrInvalidHostname) {
		t.Errorf("unmarshal invalid: %v", err)
	}
}

// TestParseResourceTypeAllocatesLittle: every decoded ResourceRegistered parses its type, so
// the parse must not build its tables again per call. Folding the separators out of a name
// that has some makes the one allocation.
func TestParseResourceTypeAllocatesLittle(t *testing.T) {
	for _, in := range []string{"virtual_machine", "vm", "Bare Metal"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseResourceType(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("ParseResourceType(%q) makes %v allocations, want at most 2", in, allocs)
		}
	}
}

func TestResourceTypes(t *testing.T) {
	t.Parallel()
	types := ResourceTypes()
	if len(types) != 33 {
		t.Fatalf("%d resource types, want 33", len(types))
	}
	if len(Categories()) != 9 {
		t.Fatalf("%d categories, want 9", len(Categories()))
	}
	perCategory := map[Category]int{}
	for _, rt := range types {
		if rt.String() == "" || strings.ToLower(rt.String()) != rt.String() {
			t.Errorf("type %q is not snake_case", rt)
		}
		got, err := ParseResourceType(rt.String())
		if err != nil || got != rt {
			t.Errorf("ParseResourceType(%q) = %v, %v", rt, got, err)
		}
		for _, alias := range rt.Aliases() {
			if got, err := ParseResourceType(alias); err != nil || got != rt {
				t.Errorf("alias %q -> %v, %v; want %v", alias, got, err, rt)
			}
		}
		perCategory[rt.Category()]++
		b, err := rt.MarshalText()
		var back ResourceType
		if err != nil || back.UnmarshalText(b) != nil || back != rt {
			t.Errorf("text round trip of %v: %s %v", rt, b, err)
		}
	}
	want := map[Category]int{CategoryCompute: 4, CategoryNetwork: 5, CategorySecurity: 5, CategoryStorage: 3,
		CategoryAppliance: 6, CategoryEdge: 3, CategoryPower: 3, CategoryTelecom: 2, CategoryOther: 2}
	for c, n := range want {
		if perCategory[c] != n || len(c.ResourceTypes()) != n {
			t.Errorf("category %s has %d types, want %d", c, perCategory[c], n)
		}
	}
	spellings := map[string]ResourceType{
		"vm": ResourceTypeVirtualMachine, " Server ": ResourceTypePhysicalServer, "BARE_METAL": ResourceTypePhysicalServer,
		"bare-metal": ResourceTypePhysicalServer, "Bare Metal": ResourceTypePhysicalServer, "PhysicalServer": ResourceTypePhysicalServer,
		"l3_switch": ResourceTypeLayer3Switch, "multilayer_switch": ResourceTypeLayer3Switch, "Layer3Switch": ResourceTypeLayer3Switch,
		"ap": ResourceTypeAccessPoint, "wap": ResourceTypeAccessPoint, "lb": ResourceTypeLoadBalancer, "fw": ResourceTypeFirewall,
		"ips": ResourceTypeIDS, "cctv": ResourceTypeCamera, "san": ResourceTypeSANSwitch, "ldap": ResourceTypeAuthServer,
		"active_directory": ResourceTypeAuthServer, "kvm_switch": ResourceTypeKVM, "screen": ResourceTypeMonitor,
		"iot": ResourceTypeIoTGateway, "battery": ResourceTypeUPS, "environmental": ResourceTypeEnvironmentalMonitor,
		"phone_system": ResourceTypePBX, "video": ResourceTypeVideoConference, "unknown": ResourceTypeUnknown,
	}
	for in, want := range spellings {
		if got, err := ParseResourceType(in); err != nil || got != want {
			t.Errorf("ParseResourceType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mainframe", "virtual machine x", "serverr"} {
		_, err := ParseResourceType(in)
		if !errors.Is(err, ErrInvalidResourceType) || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseResourceType(%q) error %v", in, err)
			continue
		}
		for _, name := range []string{"physical_server", "video_conference", "unknown", "\"" + in + "\""} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not list %q", err, name)
			}
		}
	}
	var zero ResourceType
	if !zero.IsZero() || zero.Category() != (Category{}) || zero.Aliases() != nil {
		t.Error("zero ResourceType has a category or aliases")
	}
	if _, err := zero.MarshalText(); !errors.Is(err, ErrInvalidResourceType) {
		t.Errorf("zero ResourceType marshals: %v", err)
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	for _, c := range Categories() {
		got, err := ParseCategory(strings.ToUpper(c.String()))
		b, merr := c.MarshalText()
		var back Category
		if err != nil || got != c || merr != nil || back.UnmarshalText(b) != nil || back != c {
			t.Errorf("category %v: %v %v %v", c, got, err, merr)
		}
	}
	if _, err := ParseCategory("cloud"); !errors.Is(err, ErrInvalidCategory) || !strings.Contains(err.Error(), "telecom") {
		t.Errorf("ParseCategory(cloud): %v", err)
	}
	if _, err := (Category{}).MarshalText(); !errors.Is(err, ErrInvalidCategory) {
		t.Errorf("zero Category marshals: %v", err)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	edges := map[[2]Status]bool{
		{StatusProvisioning, StatusActive}: true, {StatusProvisioning, StatusDecommissioned}: true,
		{StatusActive, StatusMaintenance}: true, {StatusActive, StatusDecommissioned}: true,
		{StatusMaintenance, StatusActive}: true, {StatusMaintenance, StatusDecommissioned}: true,
	}
	for _, from := range append(Statuses(), Status{}) {
		for _, to := range append(Statuses(), Status{}) {
			if got := from.CanTransitionTo(to); got != edges[[2]Status{from, to}] {
				t.Errorf("%q.CanTransitionTo(%q) = %v", from, to, got)
			}
		}
	}
	for _, s := range Statuses() {
		got, err := ParseStatus(" " + strings.ToUpper(s.String()))
		if err != nil || got != s || s.IsTerminal() != (s == StatusDecommissioned) {
			t.Errorf("status %v: %v %v", s, got, err)
		}
		b, err := json.Marshal(s)
		var back Status
		if err != nil || json.Unmarshal(b, &back) != nil || back != s {
			t.Errorf("JSON round trip of %v: %s %v", s, b, err)
		}
	}
	_, err := ParseStatus("retired")
	if !errors.Is(err, ErrInvalidStatus) || !strings.Contains(err.Error(), `"retired"`) || !strings.Contains(err.Error(), "maintenance") {
		t.Errorf("ParseStatus(retired): %v", err)
	}
	if _, err := (Status{}).MarshalText(); !errors.Is(err, ErrInvalidStatus) {
		t.Errorf("zero Status marshals: %v", err)
	}
}

// idCodec is what each typed id offers, to test all five alike.
type idCodec struct {
	name      string
	parse     func(string) (string, bool, error) // String(), IsZero()
	marshal   func(uuid.UUID) ([]byte, error)
	unmarshal func([]byte) (string, error)
}

func idCodecs() []idCodec {
	return []idCodec{
		{"organization id",
			func(s string) (string, bool, error) {
				id, err := ParseOrganizationID(s)
				return id.String(), id.IsZero(), err
			},
			func(u uuid.UUID) ([]byte, error) { return OrganizationID(u).MarshalText() },
			func(b []byte) (string, error) {
				var id OrganizationID
				err := id.UnmarshalText(b)
				return id.String(), err
			}},
		{"location id",
			func(s string) (string, bool, error) {
				id, err := ParseLocationID(s)
				return id.String(), id.IsZero(), err
			},
			func(u uuid.UUID) ([]byte, error) { return LocationID(u).MarshalText() },
			func(b []byte) (string, error) { var id LocationID; err := id.UnmarshalText(b); return id.String(), err }},
		{"person id",
			func(s string) (string, bool, error) {
				id, err := ParsePersonID(s)
				return id.String(), id.IsZero(), err
			},
			func(u uuid.UUID) ([]byte, error) { return PersonID(u).MarshalText() },
			func(b []byte) (string, error) { var id PersonID; err := id.UnmarshalText(b); return id.String(), err }},
		{"policy id",
			func(s string) (string, bool, error) {
				id, err := ParsePolicyID(s)
				return id.String(), id.IsZero(), err
			},
			func(u uuid.UUID) ([]byte, error) { return PolicyID(u).MarshalText() },
			func(b []byte) (string, error) { var id PolicyID; err := id.UnmarshalText(b); return id.String(), err }},
		{"account concept id",
			func(s string) (string, bool, error) {
				id, err := ParseAccountConceptID(s)
				return id.String(), id.IsZero(), err
			},
			func(u uuid.UUID) ([]byte, error) { return AccountConceptID(u).MarshalText() },
			func(b []byte) (string, error) {
				var id AccountConceptID
				err := id.UnmarshalText(b)
				return id.String(), err
			}},
	}
}

func TestTypedIDs(t *testing.T) {
	t.Parallel()
	u := uid("some id")
	for _, c := range idCodecs() {
		s, zero, err := c.parse(strings.ToUpper(u.String()))
		if err != nil || s != u.String() || zero {
			t.Errorf("%s: parse = %q %v %v", c.name, s, zero, err)
		}
		b, err := c.marshal(u)
		if err != nil || string(b) != u.String() {
			t.Errorf("%s: marshal = %s %v", c.name, b, err)
		}
		if s, err := c.unmarshal(b); err != nil || s != u.String() {
			t.Errorf("%s: unmarshal = %s %v", c.name, s, err)
		}
		if _, err := c.marshal(uuid.Nil); !errors.Is(err, ErrInvalidID) {
			t.Errorf("%s: nil UUID marshals: %v", c.name, err)
		}
		for _, bad := range []string{"", "not-a-uuid", uuid.Nil.String()} {
			_, _, err := c.parse(bad)
			if !errors.Is(err, ErrInvalidID) || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.name) {
				t.Errorf("%s: parse(%q) error %v", c.name, bad, err)
			}
			if _, err := c.unmarshal([]byte(bad)); !errors.Is(err, ErrInvalidID) {
				t.Errorf("%s: unmarshal(%q) error %v", c.name, bad, err)
			}
		}
	}
	if !(OrganizationID{}).IsZero() || !(LocationID{}).IsZero() || !(PersonID{}).IsZero() || !(PolicyID{}).IsZero() || !(AccountConceptID{}).IsZero() {
		t.Error("zero ids are not IsZero")
	}
}

func TestShortenKeepsRunesWhole(t *testing.T) {
	t.Parallel()
	// Each é is 2 bytes; after the leading "x", byte 64 is the middle of one.
	got := shorten("x" + strings.Repeat("é", 100))
	if !strings.HasSuffix(got, "... (201 bytes)") || !strings.HasPrefix(got, "xé") {
		t.Errorf("shorten = %q", got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("shorten cut a rune: %q", got)
	}
}
