package commandservice

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// HeaderCommandDigest is the event header that carries the digest of the request that wrote the
// event (see requestDigest), on events of commands sent with their own command id: a re-send of
// that command id is checked against it.
const HeaderCommandDigest = "Command-Digest"

// commandRequest is a decoded command with what the service knows of its request.
type commandRequest struct {
	cmd cr.Command
	// ownID is true when the request carried its own command_id. Only such a command can be
	// re-sent (nobody else knows a command id the service made up), so only its outcome is
	// remembered beyond its events, and only it carries a digest.
	ownID bool
	// newID is true when the sender says it made up the command id for this request
	// (api.HeaderNewCommandID): no earlier outcome of it can be recorded.
	newID bool
	// digest identifies what the request asks for (requestDigest); empty unless ownID.
	digest string
	// deadline is the caller's deadline (api.HeaderDeadline); zero for none.
	deadline time.Time
}

// requestDigest is a digest of what a command asks for: its name, its resource and its fields,
// as decoded, so that a re-send that spells the same request differently (member order, white
// space, escapes, letter case of a UUID, an omitted aggregate_id of a register, which derives from
// the command id) has the same digest. The envelope (command, correlation and causation ids,
// timestamp) is left out: it says who sent the request and when, not what it asks.
//
// It is stored with the outcome (in the results bucket, and as HeaderCommandDigest on written
// events), so it must be the same in every process and version.
func requestDigest(cmd cr.Command) string {
	h := sha256.New()
	field := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	optional := func(s *string) {
		if s == nil {
			h.Write([]byte{0})
			return
		}
		h.Write([]byte{1})
		field(*s)
	}
	field(cmd.CommandName())
	field(cmd.AggregateID().String())
	switch c := cmd.(type) {
	case cr.RegisterResource:
		field(c.Hostname.String())
		field(c.Type.String())
	case cr.AssignOrganization:
		field(uuid.UUID(c.OrganizationID).String())
	case cr.AssignLocation:
		field(uuid.UUID(c.LocationID).String())
	case cr.AssignOwner:
		field(uuid.UUID(c.OwnerID).String())
	case cr.AddPolicy:
		field(uuid.UUID(c.PolicyID).String())
	case cr.RemovePolicy:
		field(uuid.UUID(c.PolicyID).String())
	case cr.AssignAccountConcept:
		field(uuid.UUID(c.ConceptID).String())
	case cr.ClearAccountConcept:
	case cr.SetHardwareDetails:
		optional(c.Manufacturer)
		optional(c.Model)
		optional(c.SerialNumber)
	case cr.AssignAssetTag:
		field(c.AssetTag)
	case cr.UpdateMetadata:
		field(c.Key)
		field(c.Value)
	case cr.ChangeStatus:
		field(c.To.String())
	}
	return digestString(h)
}

func digestString(h hash.Hash) string {
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// commandIDReused is the reply to a command id re-sent with another request.
func commandIDReused(cmd cr.Command) *api.Error {
	return newError(api.CodeConflict, api.KindCommandIDReused, "command_id",
		"command_id %s was already used on resource %s for another request (another command, or other values); nothing was written: send a new request with a new command_id",
		cmd.Metadata().CommandID, cmd.AggregateID())
}
