package api

import "github.com/cim-infra/registry/internal/jsonappend"

// The service answers every command with a CommandReply: its JSON is written here by hand,
// byte for byte what encoding/json writes for the struct (HTML characters escaped included),
// because encoding/json's reflection was a large part of the CPU of a command.
// FuzzCommandReplyJSON compares the two.

// MarshalJSON encodes r exactly as encoding/json encodes the struct, without reflection.
func (r CommandReply) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+len(r.AggregateID)+len(r.Events)*96)
	return r.appendJSON(b), nil
}

func (r *CommandReply) appendJSON(b []byte) []byte {
	o := jsonappend.Open(b)
	o.String("aggregate_id", r.AggregateID)
	o.Uint("version", r.Version)
	o.Name("events")
	if r.Events == nil {
		o.B = append(o.B, "null"...)
	} else {
		o.B = append(o.B, '[')
		for i := range r.Events {
			if i > 0 {
				o.B = append(o.B, ',')
			}
			e := jsonappend.Open(o.B)
			e.String("type", r.Events[i].Type)
			e.String("id", r.Events[i].ID)
			e.Uint("sequence", r.Events[i].Sequence)
			o.B = e.Close()
		}
		o.B = append(o.B, ']')
	}
	if r.Duplicate {
		o.Name("duplicate")
		o.B = append(o.B, "true"...)
	}
	return o.Close()
}
