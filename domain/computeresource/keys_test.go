package computeresource

import (
	"slices"
	"testing"
)

func TestKeyChanges(t *testing.T) {
	t.Parallel()
	hostname := Key{Space: KeySpaceHostname, Value: "web-01.example.com"}
	tag := func(v string) Key { return Key{Space: KeySpaceAssetTag, Value: v} }
	claim := func(k Key) KeyChange { return KeyChange{Key: k} }
	release := func(k Key) KeyChange { return KeyChange{Key: k, Release: true} }
	untagged := run(t, State{}, registerCmd(t))

	tests := []struct {
		name   string
		before State
		cmd    Command
		want   []KeyChange
	}{
		{
			name: "register claims the hostname, lower-cased",
			cmd:  RegisterResource{Meta: meta("register"), ID: resID, Hostname: mustHostname(t, "WEB-01.Example.COM."), Type: ResourceTypeVirtualMachine},
			want: []KeyChange{claim(hostname)},
		},
		{
			name:   "a first asset tag is claimed",
			before: untagged,
			cmd:    AssignAssetTag{Meta: meta("tag-1"), ID: resID, AssetTag: "ASSET-1"},
			want:   []KeyChange{claim(tag("asset-1"))},
		},
		{
			name:   "another asset tag is claimed and the old one released",
			before: richState(t, StatusActive),
			cmd:    AssignAssetTag{Meta: meta("tag-2"), ID: resID, AssetTag: "ASSET-2"},
			want:   []KeyChange{release(tag("asset-1")), claim(tag("asset-2"))},
		},
		{
			name:   "an asset tag is claimed in lower case",
			before: untagged,
			cmd:    AssignAssetTag{Meta: meta("tag-3"), ID: resID, AssetTag: "Rack 7 / Ünit 3"},
			want:   []KeyChange{claim(tag("rack 7 / ünit 3"))},
		},
		{
			name:   "the same asset tag in another case keeps the key",
			before: richState(t, StatusActive),
			cmd:    AssignAssetTag{Meta: meta("tag-4"), ID: resID, AssetTag: "asset-1"},
		},
		{
			name:   "decommissioning releases the hostname and the asset tag",
			before: richState(t, StatusMaintenance),
			cmd:    ChangeStatus{Meta: meta("decommission"), ID: resID, To: StatusDecommissioned},
			want:   []KeyChange{release(hostname), release(tag("asset-1"))},
		},
		{
			name:   "decommissioning an untagged resource releases its hostname",
			before: untagged,
			cmd:    ChangeStatus{Meta: meta("decommission"), ID: resID, To: StatusDecommissioned},
			want:   []KeyChange{release(hostname)},
		},
		{
			name:   "other status changes keep the keys",
			before: richState(t, StatusActive),
			cmd:    ChangeStatus{Meta: meta("maintenance"), ID: resID, To: StatusMaintenance},
		},
		{
			name:   "other attributes keep the keys",
			before: richState(t, StatusActive),
			cmd:    UpdateMetadata{Meta: meta("md-2"), ID: resID, Key: "env", Value: "test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, err := Decide(tt.before, tt.cmd)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if len(events) == 0 {
				t.Fatal("Decide produced no events: the case tests nothing")
			}
			if got := KeyChanges(tt.before, events); !slices.Equal(got, tt.want) {
				t.Errorf("KeyChanges = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyChangesOfNoEvents(t *testing.T) {
	t.Parallel()
	if got := KeyChanges(richState(t, StatusActive), nil); got != nil {
		t.Errorf("KeyChanges(no events) = %v, want none", got)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		state State
		want  []Key
	}{
		{"unregistered", State{}, nil},
		{"provisioning, untagged", run(t, State{}, registerCmd(t)), []Key{{KeySpaceHostname, "web-01.example.com"}}},
		{"active, tagged", richState(t, StatusActive), []Key{{KeySpaceHostname, "web-01.example.com"}, {KeySpaceAssetTag, "asset-1"}}},
		{"decommissioned", richState(t, StatusDecommissioned), nil},
	} {
		if got := Keys(tt.state); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Keys = %v, want %v", tt.name, got, tt.want)
		}
	}
}
