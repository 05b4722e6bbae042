package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterR3StreamSurvivesLeaderRestart(t *testing.T) {
	c := RunCluster(t, 3, SyncAlways())
	nc := Connect(t, c.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Node(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no node named %q", info.Cluster.Leader)
	}
	leader.Shutdown()
	leader.Restart()
	var got *jetstream.RawStreamMsg
	// Until the stream has a leader again the server leaves the request unanswered: ask with a
	// short deadline per attempt.
	for ctx.Err() == nil {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		got, err = s.GetLastMsgForSubject(actx, "t.a")
		acancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got == nil || string(got.Data) != "1" {
		t.Fatalf("message after leader restart: %v, %v", got, err)
	}
}

func TestSingleServer(t *testing.T) {
	n := RunServer(t)
	nc := Connect(t, n.ClientURL())
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
}
