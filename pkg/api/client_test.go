package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/api"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// service starts a micro service on nc with one endpoint per subject in handlers, the way the
// command service does, so that the client is tested against micro's real wire format.
func service(t *testing.T, nc *nats.Conn, handlers map[string]micro.HandlerFunc) {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: "client-test", Version: "0.0.1", QueueGroup: api.QueueGroup})
	if err != nil {
		t.Fatalf("add service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	i := 0
	for subject, h := range handlers {
		i++
		if err := svc.AddEndpoint("e"+string(rune('a'+i)), h, micro.WithEndpointSubject(subject)); err != nil {
			t.Fatalf("add endpoint %s: %v", subject, err)
		}
	}
	// The endpoints' subscriptions reach the server before any request from another connection.
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func newClient(t *testing.T, nc *nats.Conn, opts ...api.ClientOption) *api.Client {
	t.Helper()
	c, err := api.NewClient(nc, opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func asAPIError(t *testing.T, err error) *api.Error {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *api.Error", err, err)
	}
	return e
}

func TestClientDecodesServiceErrors(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	full, _ := json.Marshal(api.Error{Code: 400, Kind: "invalid_field", Message: "hostname: label starts with '-'",
		Field: "hostname", Details: map[string]any{"value": "-web"}})
	noCode, _ := json.Marshal(api.Error{Kind: "invalid_transition", Message: "provisioning -> maintenance"})
	cases := []struct {
		name        string
		code, descr string
		body        []byte
		want        api.Error
	}{
		{"json body", "400", "hostname: invalid", full, api.Error{Code: 400, Kind: "invalid_field",
			Message: "hostname: label starts with '-'", Field: "hostname", Details: map[string]any{"value": "-web"}}},
		{"json body without code", "409", "rule", noCode, api.Error{Code: 409, Kind: "invalid_transition", Message: "provisioning -> maintenance"}},
		{"text body", "404", "no resource 42", []byte("not json"), api.Error{Code: 404, Kind: "not_found", Message: "no resource 42"}},
		{"empty body", "503", "store unavailable", nil, api.Error{Code: 503, Kind: "unavailable", Message: "store unavailable"}},
		{"unreadable code", "teapot", "odd", nil, api.Error{Code: 500, Kind: "error", Message: `odd (unreadable error code "teapot")`}},
	}
	handlers := map[string]micro.HandlerFunc{}
	for i, tc := range cases {
		handlers["test.err."+string(rune('a'+i))] = func(req micro.Request) { _ = req.Error(tc.code, tc.descr, tc.body) }
	}
	service(t, nc, handlers)
	c := newClient(t, nc)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var reply map[string]any
			err := c.Do(context.Background(), "test.err."+string(rune('a'+i)), map[string]string{"x": "y"}, &reply)
			got := asAPIError(t, err)
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("error = %#v, want %#v", *got, tc.want)
			}
			if api.Retryable(err) != (tc.want.Code == 503) {
				t.Errorf("Retryable = %v for code %d", api.Retryable(err), tc.want.Code)
			}
		})
	}
}

func TestClientRegisterFillsCommandID(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	var got api.Register
	service(t, nc, map[string]micro.HandlerFunc{
		api.CommandSubject(api.CmdRegister): func(req micro.Request) {
			if err := json.Unmarshal(req.Data(), &got); err != nil {
				_ = req.Error("400", err.Error(), nil)
				return
			}
			_ = req.RespondJSON(api.CommandReply{AggregateID: "agg-1", Version: 7,
				Events: []api.EventRef{{Type: "ResourceRegistered", ID: "ev-1", Sequence: 7}}})
		},
	})
	c := newClient(t, nc)
	reply, err := c.Register(context.Background(), api.Register{Hostname: "web-01.example.com", ResourceType: "vm"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	want := api.CommandReply{AggregateID: "agg-1", Version: 7, Events: []api.EventRef{{Type: "ResourceRegistered", ID: "ev-1", Sequence: 7}}}
	if !reflect.DeepEqual(*reply, want) {
		t.Errorf("reply = %+v, want %+v", *reply, want)
	}
	if _, err := uuid.Parse(got.CommandID); err != nil {
		t.Errorf("command_id %q sent is not a UUID: %v", got.CommandID, err)
	}
	if got.Hostname != "web-01.example.com" || got.ResourceType != "vm" {
		t.Errorf("request = %+v", got)
	}

	if _, err := c.Register(context.Background(), api.Register{Envelope: api.Envelope{CommandID: "mine"}, Hostname: "h", ResourceType: "vm"}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if got.CommandID != "mine" {
		t.Errorf("command_id sent = %q, want the caller's %q", got.CommandID, "mine")
	}
}

func TestClientNoResponders(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	c := newClient(t, nc, api.WithCommandIDs(func() string { return "cmd-1" }), api.WithRetries(2), api.WithRetryBackoff(time.Millisecond))
	_, err := c.AssignLocation(context.Background(), api.AssignLocation{Target: api.Target{AggregateID: "a"}, LocationID: "l"})
	e := asAPIError(t, err)
	if e.Code != api.CodeUnavailable || e.Kind != api.KindNoResponders {
		t.Errorf("error = %+v, want 503 %s", e, api.KindNoResponders)
	}
	if !errors.Is(err, nats.ErrNoResponders) || !api.Retryable(err) {
		t.Errorf("error %v: Is(ErrNoResponders) = %v, Retryable = %v", err, errors.Is(err, nats.ErrNoResponders), api.Retryable(err))
	}
	if e.Details["command_id"] != "cmd-1" {
		t.Errorf("details = %v, want the command_id the client chose", e.Details)
	}

	_, err = c.Get(context.Background(), api.Get{AggregateID: "a"})
	if e := asAPIError(t, err); e.Kind != api.KindNoResponders || e.Details != nil {
		t.Errorf("query error = %+v, want %s without details", e, api.KindNoResponders)
	}
	if e := asAPIError(t, err); !strings.Contains(e.Message, "command service") {
		t.Errorf("get error %q does not name the command service, which answers get", e.Message)
	}

	// list is the query service's: the message names the service the operator must look at.
	_, err = c.List(context.Background(), api.List{})
	if e := asAPIError(t, err); e.Kind != api.KindNoResponders || !strings.Contains(e.Message, "query service") {
		t.Errorf("list error = %+v, want %s naming the query service", e, api.KindNoResponders)
	}
}

// attempts records the requests an endpoint received and answers each by its position.
type attempts struct {
	mu       sync.Mutex
	ids      []string
	behavior func(n int, req micro.Request)
}

func (a *attempts) handle(req micro.Request) {
	var env api.Envelope
	_ = json.Unmarshal(req.Data(), &env)
	a.mu.Lock()
	a.ids = append(a.ids, env.CommandID)
	n := len(a.ids)
	a.mu.Unlock()
	a.behavior(n, req)
}

func (a *attempts) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	ok := func(req micro.Request) { _ = req.RespondJSON(api.CommandReply{AggregateID: "a", Version: 3}) }
	cases := []struct {
		name     string
		retries  int
		behavior func(n int, req micro.Request)
		wantCode int // 0: success
		wantN    int
	}{
		{"503 then success", 3, func(n int, req micro.Request) {
			if n < 3 {
				_ = req.Error("503", "store unavailable", nil)
				return
			}
			ok(req)
		}, 0, 3},
		{"timeout then success", 2, func(n int, req micro.Request) {
			if n == 1 {
				return // the reply is lost
			}
			ok(req)
		}, 0, 2},
		{"400 is not retried", 3, func(_ int, req micro.Request) { _ = req.Error("400", "bad", nil) }, 400, 1},
		{"409 is not retried", 3, func(_ int, req micro.Request) { _ = req.Error("409", "rule", nil) }, 409, 1},
		{"retries exhausted", 2, func(_ int, req micro.Request) { _ = req.Error("503", "store unavailable", nil) }, 503, 3},
		{"no retries by default", 0, func(_ int, req micro.Request) { _ = req.Error("503", "store unavailable", nil) }, 503, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.RunServer(t)
			nc := natstest.Connect(t, srv.ClientURL())
			a := &attempts{behavior: tc.behavior}
			service(t, nc, map[string]micro.HandlerFunc{api.CommandSubject(api.CmdChangeStatus): a.handle})
			// Long enough that an answered attempt never times out on a loaded machine; the
			// lost reply costs one timeout.
			timeout := 10 * time.Second
			if strings.HasPrefix(tc.name, "timeout") {
				timeout = time.Second
			}
			c := newClient(t, nc, api.WithRetries(tc.retries), api.WithRetryBackoff(time.Millisecond), api.WithTimeout(timeout))
			_, err := c.ChangeStatus(context.Background(), api.ChangeStatus{Target: api.Target{AggregateID: "a"}, Status: "active"})
			if tc.wantCode == 0 && err != nil {
				t.Fatalf("change status: %v", err)
			}
			if tc.wantCode != 0 {
				if e := asAPIError(t, err); e.Code != tc.wantCode {
					t.Fatalf("error = %v, want code %d", err, tc.wantCode)
				}
			}
			ids := a.seen()
			if len(ids) != tc.wantN {
				t.Fatalf("service saw %d attempts, want %d", len(ids), tc.wantN)
			}
			for _, id := range ids {
				if id == "" || id != ids[0] {
					t.Fatalf("command ids over attempts = %v, want one non-empty id", ids)
				}
			}
		})
	}
}

func TestClientTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	service(t, nc, map[string]micro.HandlerFunc{
		api.QuerySubject(api.QueryGet): func(micro.Request) {}, // never answers
	})
	c := newClient(t, nc, api.WithTimeout(50*time.Millisecond))
	_, err := c.Get(context.Background(), api.Get{AggregateID: "a"})
	if e := asAPIError(t, err); e.Code != api.CodeUnavailable || e.Kind != api.KindTimeout {
		t.Errorf("error = %+v, want 503 %s", e, api.KindTimeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Get(ctx, api.Get{AggregateID: "a"})
	var e *api.Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &e) {
		t.Errorf("cancelled request: error %v, want context.Canceled and no *api.Error", err)
	}
}

func TestClientAllHistory(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	service(t, nc, map[string]micro.HandlerFunc{
		api.QuerySubject(api.QueryHistory): func(req micro.Request) {
			var q api.History
			_ = json.Unmarshal(req.Data(), &q)
			page := api.HistoryPage{AggregateID: q.AggregateID}
			for s := q.AfterSequence + 1; s <= 5 && len(page.Events) < q.Limit; s++ {
				page.Events = append(page.Events, api.HistoryEvent{Sequence: s, Type: "MetadataUpdated", Data: json.RawMessage(`{}`)})
			}
			if last := q.AfterSequence + uint64(len(page.Events)); last < 5 {
				page.More, page.NextAfter = true, last
			}
			_ = req.RespondJSON(page)
		},
	})
	c := newClient(t, nc)
	events, err := c.AllHistory(context.Background(), api.History{AggregateID: "a", AfterSequence: 1, Limit: 2})
	if err != nil {
		t.Fatalf("all history: %v", err)
	}
	var seqs []uint64
	for _, e := range events {
		seqs = append(seqs, e.Sequence)
	}
	if !reflect.DeepEqual(seqs, []uint64{2, 3, 4, 5}) {
		t.Errorf("sequences = %v, want [2 3 4 5]", seqs)
	}
}

func TestClientOptions(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	for name, opt := range map[string]api.ClientOption{
		"zero timeout":     api.WithTimeout(0),
		"negative retries": api.WithRetries(-1),
		"negative backoff": api.WithRetryBackoff(-time.Second),
		"nil id source":    api.WithCommandIDs(nil),
	} {
		if _, err := api.NewClient(nc, opt); !errors.Is(err, api.ErrInvalidOption) {
			t.Errorf("%s: error %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := api.NewClient(nil); !errors.Is(err, api.ErrInvalidOption) {
		t.Errorf("nil connection: error %v, want ErrInvalidOption", err)
	}
}

// TestClientSendsItsDeadline: every attempt carries the end of its time-out in HeaderDeadline,
// as an RFC 3339 time, or ctx's deadline when that comes first.
func TestClientSendsItsDeadline(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	subject := api.CommandSubject(api.CmdAssignAssetTag)
	headers := make(chan string, 10)
	service(t, nc, map[string]micro.HandlerFunc{subject: func(req micro.Request) {
		headers <- req.Headers().Get(api.HeaderDeadline)
		_ = req.Respond([]byte(`{"aggregate_id":"a","version":1,"events":[]}`))
	}})
	c := newClient(t, natstest.Connect(t, srv.ClientURL()), api.WithTimeout(time.Hour))
	deadlineOf := func(ctx context.Context) (before, sent, after time.Time) {
		t.Helper()
		before = time.Now()
		if _, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{AggregateID: uuid.NewString()}, AssetTag: "T"}); err != nil {
			t.Fatal(err)
		}
		after = time.Now()
		v := <-headers
		sent, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("header %s %q: %v", api.HeaderDeadline, v, err)
		}
		return before, sent, after
	}
	before, sent, after := deadlineOf(context.Background())
	if sent.Before(before.Add(time.Hour)) || sent.After(after.Add(time.Hour)) {
		t.Fatalf("deadline %s of a request sent between %s and %s with a time-out of 1h", sent, before, after)
	}
	ctx, cancel := context.WithDeadline(context.Background(), before.Add(time.Minute))
	defer cancel()
	if _, sent, _ := deadlineOf(ctx); !sent.Equal(before.Add(time.Minute).Round(0)) {
		t.Fatalf("deadline %s with ctx's deadline %s before the time-out's", sent, before.Add(time.Minute))
	}
}

// TestClientMarksNewCommandIDs: the first attempt of a command whose command id the client made
// up carries HeaderNewCommandID; its retries do not, nor does a command sent with the caller's
// own command id, nor a query.
func TestClientMarksNewCommandIDs(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	command, query := api.CommandSubject(api.CmdAssignAssetTag), api.QuerySubject(api.QueryGet)
	var mu sync.Mutex
	var marks []string
	unavailable, _ := json.Marshal(api.Error{Code: 503, Kind: "unavailable", Message: "try again"})
	handler := func(req micro.Request) {
		mu.Lock()
		marks = append(marks, req.Headers().Get(api.HeaderNewCommandID))
		n := len(marks)
		mu.Unlock()
		if n == 1 { // the first attempt fails, so that the client retries
			_ = req.Error("503", "try again", unavailable)
			return
		}
		_ = req.Respond([]byte(`{"aggregate_id":"a","version":1,"events":[]}`))
	}
	service(t, nc, map[string]micro.HandlerFunc{command: handler, query: handler})
	c := newClient(t, natstest.Connect(t, srv.ClientURL()), api.WithRetries(1), api.WithRetryBackoff(time.Millisecond))
	ctx := context.Background()
	if _, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{AggregateID: uuid.NewString()}, AssetTag: "T"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignAssetTag(ctx, api.AssignAssetTag{Target: api.Target{Envelope: api.Envelope{CommandID: uuid.NewString()}, AggregateID: uuid.NewString()}, AssetTag: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, query, api.Get{AggregateID: uuid.NewString()}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"true", "", "", ""}; !reflect.DeepEqual(marks, want) {
		t.Fatalf("%s on the attempts: %q, want %q (made-up id, its retry, the caller's id, a query)", api.HeaderNewCommandID, marks, want)
	}
}
