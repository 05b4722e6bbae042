package queryservice

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"

	"github.com/cim-infra/registry/pkg/api"
)

// cursorState is what a List cursor carries: the order and a hash of the filter it was made
// for (a cursor sent with another filter or order is refused rather than giving a page of
// another list), and the sort key of the last row returned. Paging goes on after that key, in
// whatever state the model is then: the key, not a row offset, is what keeps rows that kept
// their sort value from being skipped or repeated while the model changes.
type cursorState struct {
	Order  string `json:"o"`
	Filter uint64 `json:"f"`
	After  []byte `json:"a"`
}

// encode makes the opaque form: base64url of JSON. Clients must not rely on what is inside.
func (c cursorState) encode() string {
	data, _ := json.Marshal(c) // cannot fail: strings, a number and bytes
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeCursor(s string) (cursorState, error) {
	var c cursorState
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || len(c.After) == 0 {
		return cursorState{}, invalidField("cursor", "cursor %q is not a cursor this service made; send the next_cursor of a page as it came", shorten(s))
	}
	return c, nil
}

// filterHash identifies a filter: the FNV-1a hash of its JSON form (encoding/json writes struct
// fields in a fixed order).
func filterHash(f api.Filter) uint64 {
	data, _ := json.Marshal(f)
	h := fnv.New64a()
	_, _ = h.Write(data)
	return h.Sum64()
}
