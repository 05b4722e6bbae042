package queryservice

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/nats-io/nats.go/micro"
)

// TestMicroStatsTellTheTruth reads an instance's statistics the way `nats micro stats` does,
// through $SRV.STATS: every request is counted on its endpoint, every error reply (a body that
// does not decode, a bad field, a min_sequence the model did not reach in time) in num_errors
// with the last one in last_error, and processing_time covers the whole handling, the
// min_sequence wait included: at least the wait, and at least what the latency histogram
// observed.
func TestMicroStatsTellTheTruth(t *testing.T) {
	e := newEnv(t, 17, 5)
	e.write(20)
	in := e.startReady(testOptions())
	e.waitSeq(in, e.head)

	var page api.ResourcePage
	e.query(api.QueryList, api.List{}, &page)                            // ok
	e.queryError(api.QueryList, []byte(`{`))                             // 400
	e.query(api.QueryCount, api.Count{By: "status"}, &json.RawMessage{}) // ok
	e.queryError(api.QueryTrace, api.Trace{CorrelationID: "nope"})       // 400
	const wait = 300 * time.Millisecond
	behind := api.Count{By: "status", Consistency: api.Consistency{MinSequence: e.head + 1000, WaitMillis: wait.Milliseconds()}}
	if got := e.queryError(api.QueryCount, behind); got.Code != api.CodeUnavailable || got.Kind != api.KindBehind {
		t.Fatalf("count ahead of the model: %+v", got)
	}

	m, err := e.nc.RequestWithContext(e.ctx, "$SRV.STATS."+api.QueryServiceName+"."+in.svc.micro.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(m.Data, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Type != micro.StatsResponseType || stats.Name != api.QueryServiceName || stats.Started.IsZero() {
		t.Fatalf("stats identity: %s", m.Data)
	}
	byName := map[string]*micro.EndpointStats{}
	for _, ep := range stats.Endpoints {
		byName[ep.Name] = ep
	}
	want := map[string]struct{ requests, errors int }{
		api.QueryList: {2, 1}, api.QueryCount: {2, 1}, api.QueryTrace: {1, 1},
	}
	for name, w := range want {
		ep := byName[name]
		if ep == nil {
			t.Fatalf("no endpoint %s in %s", name, m.Data)
		}
		if ep.NumRequests != w.requests || ep.NumErrors != w.errors {
			t.Errorf("%s: %d requests, %d errors, want %d and %d", name, ep.NumRequests, ep.NumErrors, w.requests, w.errors)
		}
		if ep.AverageProcessingTime != ep.ProcessingTime/time.Duration(ep.NumRequests) {
			t.Errorf("%s: average %s of %s over %d requests", name, ep.AverageProcessingTime, ep.ProcessingTime, ep.NumRequests)
		}
		observed := time.Duration(histogramSum(t, in, name) * float64(time.Second))
		if ep.ProcessingTime < observed {
			t.Errorf("%s processing time %s, less than the %s the latency histogram observed", name, ep.ProcessingTime, observed)
		}
	}
	if last := byName[api.QueryCount].LastError; !strings.HasPrefix(last, "503:") {
		t.Errorf("last error of count %q, want the 503 sent last", last)
	}
	if last := byName[api.QueryList].LastError; !strings.HasPrefix(last, "400:") {
		t.Errorf("last error of list %q, want the 400", last)
	}
	if got := byName[api.QueryCount].ProcessingTime; got < wait {
		t.Errorf("count processing time %s, but one request waited %s for its min_sequence", got, wait)
	}
}

// histogramSum is the sum of the request latency histogram of one endpoint.
func histogramSum(t *testing.T, in *instance, endpoint string) float64 {
	t.Helper()
	families, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "cim_query_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					return m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	t.Fatalf("no latency histogram for %s", endpoint)
	return 0
}
