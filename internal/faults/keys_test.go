package faults

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
)

// checkKeys checks the key subjects against the fold of the stream: every key of a live
// resource is held by that resource, no live key is held by two resources, and no key is held
// by a decommissioned or non-existent resource. It returns the keys whose last message is a
// release.
func (w *world) checkKeys(final map[uuid.UUID]aggregateState) []cr.Key {
	t := w.t
	t.Helper()
	live := map[cr.Key]uuid.UUID{}
	for id, a := range final {
		for _, k := range cr.Keys(a.state) {
			if other, twice := live[k]; twice {
				t.Errorf("live resources %s and %s both hold %s %q", other, id, k.Space, k.Value)
			}
			live[k] = id
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	var released []cr.Key
	held := 0
	for subject := range w.subjectCounts(ctx, storeConfig.KeyPrefix+".>") {
		k, err := keyOfSubject(subject)
		if err != nil {
			t.Errorf("key subject %s: %v", subject, err)
			continue
		}
		h, err := w.store.Key(ctx, string(k.Space), k.Value)
		if err != nil {
			t.Fatalf("holder of %s %q: %v", k.Space, k.Value, err)
		}
		want, isLive := live[k]
		holder, _ := uuid.Parse(h.Aggregate.ID)
		switch {
		case !h.Held && isLive:
			t.Errorf("%s %q of live resource %s is released (sequence %d)", k.Space, k.Value, want, h.Sequence)
		case !h.Held:
			released = append(released, k)
		case !isLive:
			state := "does not exist"
			if a, ok := final[holder]; ok {
				state = "is " + a.state.Status().String() + " with " + fmt.Sprint(cr.Keys(a.state))
			}
			t.Errorf("%s %q is held by resource %s, which %s (sequence %d)", k.Space, k.Value, holder, state, h.Sequence)
		case holder != want:
			t.Errorf("%s %q is held by resource %s, but live resource %s has it (sequence %d)", k.Space, k.Value, holder, want, h.Sequence)
		default:
			held++
		}
		delete(live, k)
	}
	for k, id := range live {
		t.Errorf("%s %q of live resource %s was never claimed", k.Space, k.Value, id)
	}
	t.Logf("keys: %d held by their live resources, %d released", held, len(released))
	return released
}

// keyOfSubject decodes a key subject <prefix>.<space>.<base64url key>.
func keyOfSubject(subject string) (cr.Key, error) {
	rest, ok := strings.CutPrefix(subject, storeConfig.KeyPrefix+".")
	space, token, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return cr.Key{}, fmt.Errorf("not <%s>.<space>.<key>", storeConfig.KeyPrefix)
	}
	key, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return cr.Key{}, fmt.Errorf("key token %q: %w", token, err)
	}
	return cr.Key{Space: cr.KeySpace(space), Value: string(key)}, nil
}

// checkClaimable claims every released key once through the command service, as c: a new
// resource takes it, and a second new resource is then refused it, naming the first. A hostname
// is taken in upper case and asked for again in lower case.
func checkClaimable(ctx context.Context, t *testing.T, c *client, released []cr.Key) {
	t.Helper()
	register := func(hostname string) (uuid.UUID, record) {
		id := uuid.New()
		h, err := cr.ParseHostname(hostname)
		if err != nil {
			t.Fatal(err)
		}
		return id, c.do(ctx, cr.RegisterResource{Meta: c.meta(), ID: id, Hostname: h, Type: cr.ResourceTypes()[0]})
	}
	// claim takes k for a new resource; it returns the resource and the record of the command
	// that claimed k.
	claim := func(k cr.Key, hostname string) (uuid.UUID, record) {
		if k.Space == cr.KeySpaceHostname {
			return register(hostname)
		}
		id, rec := register("claim-check-" + uuid.NewString()[:8] + ".example.com")
		if rec.Output.Outcome != OutcomeOK {
			t.Fatalf("register a resource for %s %q: %s %v", k.Space, k.Value, rec.Output.Outcome, rec.Err)
		}
		return id, c.do(ctx, cr.AssignAssetTag{Meta: c.meta(), ID: id, AssetTag: k.Value})
	}
	for _, k := range released {
		first, rec := claim(k, strings.ToUpper(k.Value))
		if rec.Output.Outcome != OutcomeOK || len(rec.Output.Events) == 0 {
			t.Errorf("released %s %q: the first claim got %s %v, want it taken", k.Space, k.Value, rec.Output.Outcome, rec.Err)
			continue
		}
		_, rec = claim(k, k.Value)
		wantKind := KindAssetTagTaken
		if k.Space == cr.KeySpaceHostname {
			wantKind = KindHostnameTaken
		}
		var e *api.Error
		if !errors.As(rec.Err, &e) || e.Kind != wantKind || e.Details["holder_id"] != first.String() {
			t.Errorf("released %s %q, claimed by %s: the second claim got %s %v, want %s naming %s",
				k.Space, k.Value, first, rec.Output.Outcome, rec.Err, wantKind, first)
		}
	}
	t.Logf("claimed each of %d released keys once", len(released))
}
