package commandservice

import (
	"context"
	"time"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/internal/microsvc"
	"github.com/cim-infra/registry/internal/resourcestore"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/jetstore"
	"github.com/google/uuid"
)

// serveGet answers a get query: the current state (from the cache, brought up to date with a
// tail read), or the state as of a sequence or a time (folded from the store, never cached).
func (s *Service) serveGet(name string, x *microsvc.Request, data []byte) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	out, err := s.get(ctx, data)
	s.finishQuery(name, x, start, out, err)
}

func (s *Service) get(ctx context.Context, data []byte) (api.Resource, error) {
	q, id, err := decodeGet(data, s.opts.MaxRequestBytes)
	if err != nil {
		return api.Resource{}, err
	}
	if q.AsOfSequence == 0 && q.AsOfTime == nil {
		return s.current(ctx, id)
	}
	var opts []jetstore.LoadOption
	if q.AsOfSequence != 0 {
		opts = append(opts, jetstore.UpToSequence(q.AsOfSequence))
	}
	if q.AsOfTime != nil {
		opts = append(opts, jetstore.UpToTime(*q.AsOfTime))
	}
	loaded, err := s.store.Load(ctx, resourcestore.Ref(id), opts...)
	if err != nil {
		return api.Resource{}, err
	}
	var agg aggregate
	if err := agg.apply(loaded.Events...); err != nil {
		return api.Resource{}, err
	}
	if !agg.state.Registered() {
		return api.Resource{}, newError(api.CodeNotFound, KindNotFound, "", "resource %s was not registered at that point", id)
	}
	return resource(agg.state, agg.lastSeq), nil
}

// current returns the resource's state now.
func (s *Service) current(ctx context.Context, id uuid.UUID) (api.Resource, error) {
	e := s.cache.acquire(id)
	defer s.cache.release(e)
	if e.loaded {
		s.metrics.cacheHits.Inc()
		if err := s.refresh(ctx, e); err != nil {
			return api.Resource{}, err
		}
	} else {
		s.metrics.cacheMisses.Inc()
		if _, err := s.load(ctx, e, true); err != nil {
			return api.Resource{}, err
		}
	}
	if !e.agg.state.Registered() {
		return api.Resource{}, newError(api.CodeNotFound, KindNotFound, "", "no resource %s", id)
	}
	return resource(e.agg.state, e.agg.lastSeq), nil
}

// resource is the wire form of a state.
func resource(st cr.State, version uint64) api.Resource {
	r := api.Resource{
		ID:           st.ID().String(),
		Hostname:     st.Hostname().String(),
		ResourceType: st.Type().String(),
		Category:     st.Type().Category().String(),
		Status:       st.Status().String(),
		Policies:     []string{},
		Metadata:     st.Metadata(),
		CreatedAt:    st.CreatedAt(),
		UpdatedAt:    st.UpdatedAt(),
		Version:      version,
	}
	if id, ok := st.OrganizationID(); ok {
		r.OrganizationID = id.String()
	}
	if id, ok := st.LocationID(); ok {
		r.LocationID = id.String()
	}
	if id, ok := st.OwnerID(); ok {
		r.OwnerID = id.String()
	}
	if id, ok := st.AccountConceptID(); ok {
		r.AccountConceptID = id.String()
	}
	for _, p := range st.Policies() {
		r.Policies = append(r.Policies, p.String())
	}
	r.Manufacturer, _ = st.Manufacturer()
	r.Model, _ = st.Model()
	r.SerialNumber, _ = st.SerialNumber()
	r.AssetTag, _ = st.AssetTag()
	return r
}

// serveHistory answers a history query with one page of events, upcast to their current
// schema versions.
func (s *Service) serveHistory(name string, x *microsvc.Request, data []byte) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	out, err := s.history(ctx, data)
	s.finishQuery(name, x, start, out, err)
}

func (s *Service) history(ctx context.Context, data []byte) (api.HistoryPage, error) {
	q, id, err := decodeHistory(data, s.opts.MaxRequestBytes)
	if err != nil {
		return api.HistoryPage{}, err
	}
	ref := resourcestore.Ref(id)
	// Only the page (and one event to tell whether more follow) is read, however long the
	// history.
	loaded, err := s.store.Load(ctx, ref, jetstore.After(q.AfterSequence), jetstore.MaxEvents(q.Limit))
	if err != nil {
		return api.HistoryPage{}, err
	}
	if len(loaded.Events) == 0 {
		exists := false
		if q.AfterSequence > 0 {
			before, err := s.store.Load(ctx, ref, jetstore.UpToSequence(q.AfterSequence))
			if err != nil {
				return api.HistoryPage{}, err
			}
			exists = len(before.Events) > 0
		}
		if !exists {
			return api.HistoryPage{}, newError(api.CodeNotFound, KindNotFound, "", "no resource %s", id)
		}
	}
	page := api.HistoryPage{AggregateID: id.String(), Events: make([]api.HistoryEvent, 0, len(loaded.Events)), More: loaded.More}
	for _, rec := range loaded.Events {
		page.Events = append(page.Events, api.HistoryEvent{
			Sequence:      rec.Sequence,
			Type:          rec.Type,
			SchemaVersion: rec.SchemaVersion,
			ID:            rec.ID,
			CommandID:     rec.CommandID,
			CorrelationID: rec.CorrelationID,
			StoredAt:      rec.Time.UTC(),
			Data:          rec.Data,
		})
		page.NextAfter = rec.Sequence
	}
	return page, nil
}

// finishQuery replies to a query and records its outcome.
func (s *Service) finishQuery(name string, x *microsvc.Request, start time.Time, out any, err error) {
	s.metrics.queryLatency.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		e := toReply(err)
		if e.Kind == KindNotRegistered {
			e.Kind = KindNotFound
		}
		s.metrics.queries.WithLabelValues(name, outcome(e.Code, e.Kind)).Inc()
		s.respondError(x, e)
		s.levelFor(e.Code).Str("query", name).Int("code", e.Code).Str("kind", e.Kind).Str("error", e.Message).Msg("query")
		return
	}
	s.metrics.queries.WithLabelValues(name, OutcomeOK).Inc()
	s.respond(x, out)
}
