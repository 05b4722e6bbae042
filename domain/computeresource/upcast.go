package computeresource

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// upcastResourceRegisteredV1 converts upstream's ResourceRegistered (version 1) to
// version 2. Version 1 is what the upstream Rust crate wrote: its resource_type was a
// free-form string ("vm", "Server", "bare_metal", "PhysicalServer"...), its hostname kept
// the case it was given, it carried its own event_version and a null causation_id, and it
// had no command_id. Version 2 carries the canonical type name and a canonical hostname.
//
// A legacy type string that names no type or alias becomes "unknown": that is what
// upstream itself stored it as (it silently mapped unrecognised strings to unknown), so
// the upcast keeps the fact as upstream recorded it rather than refusing the history.
// New commands, in contrast, are refused an unknown type string.
func upcastResourceRegisteredV1(data []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: ResourceRegistered v1 is not a JSON object: %v", ErrMalformedEvent, err)
	}
	var legacy string
	if err := json.Unmarshal(obj["resource_type"], &legacy); err != nil {
		return nil, fmt.Errorf("%w: ResourceRegistered v1 resource_type is not a string: %v", ErrMalformedEvent, err)
	}
	rt, err := ParseResourceType(legacy)
	if errors.Is(err, ErrInvalidResourceType) {
		rt = ResourceTypeUnknown
	}
	obj["resource_type"], _ = json.Marshal(rt.String())
	if raw, ok := obj["hostname"]; ok {
		var h string
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("%w: ResourceRegistered v1 hostname is not a string: %v", ErrMalformedEvent, err)
		}
		obj["hostname"], _ = json.Marshal(strings.ToLower(h))
	}
	delete(obj, "event_version")
	if string(obj["causation_id"]) == "null" {
		delete(obj, "causation_id")
	}
	return marshalJSON(obj)
}
