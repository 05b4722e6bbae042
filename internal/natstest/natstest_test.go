package natstest

import (
	"context"
	"net"
	"strconv"
	"strings"
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

// A node whose port is taken says so: the server logs the failed bind and waits, and without its
// errors the start would only report a timeout.
func TestStartReportsWhyNotReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	defer func(d time.Duration) { readyTimeout = d }(readyTimeout)
	readyTimeout = time.Second
	n := &Node{t: t, opts: baseOptions(t.TempDir(), "taken", port)}
	err = n.start()
	if err == nil {
		n.Shutdown()
		t.Fatal("started on a taken port")
	}
	if !strings.Contains(err.Error(), "Error listening on port") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("error does not say why: %v", err)
	}
	if n.Running() {
		t.Fatal("node reported running after a failed start")
	}
}

// StartServer and StartCluster work without a test: the caller owns the nodes and the
// directory, a shut-down node starts again on its store with Start, and a running one refuses.
func TestStartWithoutTest(t *testing.T) {
	n, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	nc := Connect(t, n.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err == nil {
		t.Fatal("Start of a running node succeeded")
	}
	n.Shutdown()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, "T"); err != nil {
		t.Fatalf("stream after Start on the same store: %v", err)
	}

	c, err := StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	if err := c.AwaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	c.Shutdown()
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if err := c.AwaitReady(short); err == nil {
		t.Fatal("AwaitReady of a stopped cluster returned nil")
	}
}
