package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/google/uuid"
)

// Key contention: every client registers new resources with hostnames from a small pool (in
// varying case: hostnames compare case-insensitively), assigns asset tags from a small pool to
// them and to the hot aggregates, and decommissions them, so that the keys change hands all
// the time, under the same faults as the rest of the load.
const (
	contendedHostnames = 4
	contendedTags      = 4
	// contendedRecent is how many of the latest contended resources the tag assignments and
	// decommissions pick from: a pool that keeps some resources live and turns over.
	contendedRecent = 8
)

// contended are the new resources a client sent a register for that may have been written
// (acknowledged, or without a definite reply).
type contended struct {
	mu  sync.Mutex
	ids []uuid.UUID
}

func (c *contended) add(id uuid.UUID) {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

// pick returns one of the latest contended resources, or false if there is none yet.
func (c *contended) pick(n int) (uuid.UUID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) == 0 {
		return uuid.UUID{}, false
	}
	recent := c.ids[max(0, len(c.ids)-contendedRecent):]
	return recent[n%len(recent)], true
}

// contendedHostname is the i-th hostname of the pool, each letter in upper or lower case as
// r's bits say.
func contendedHostname(i int, r uint64) cr.Hostname {
	name := []byte(fmt.Sprintf("contended-%d.example.com", i))
	for j := range name {
		if r&(1<<(j%64)) != 0 {
			name[j] = strings.ToUpper(string(name[j]))[0]
		}
	}
	h, err := cr.ParseHostname(string(name))
	if err != nil {
		panic(err)
	}
	return h
}

func contendedTag(i int) string { return fmt.Sprintf("CONTENDED-%d", i) }

// contend sends one command that claims or releases a contended key: a register of a new
// resource (claims a pool hostname), an asset tag from the pool for a contended resource or a
// hot aggregate (claims it, releasing the one it replaces), or a decommission of a contended
// resource (releases its hostname and tag).
func (c *client) contend(ctx context.Context) {
	l, m := c.l, c.meta()
	switch r := c.rng.IntN(20); {
	case r < 8:
		id := randUUID(c.rng)
		cmd := cr.RegisterResource{Meta: m, ID: id, Hostname: contendedHostname(c.rng.IntN(contendedHostnames), c.rng.Uint64()),
			Type: cr.ResourceTypes()[0]}
		if rec := c.do(ctx, cmd); rec.Output.Outcome == OutcomeOK || rec.Output.Outcome == OutcomeUnknown {
			l.contended.add(id)
		}
	case r < 15:
		id, ok := l.contended.pick(c.rng.IntN(contendedRecent))
		if !ok || c.rng.IntN(3) == 0 {
			id = l.hot[c.rng.IntN(len(l.hot))]
		}
		c.do(ctx, cr.AssignAssetTag{Meta: m, ID: id, AssetTag: contendedTag(c.rng.IntN(contendedTags))})
	default:
		if id, ok := l.contended.pick(c.rng.IntN(contendedRecent)); ok {
			c.do(ctx, cr.ChangeStatus{Meta: m, ID: id, To: cr.StatusDecommissioned})
		}
	}
}
