package jetstore_test

import (
	"fmt"
	"testing"

	"github.com/cim-infra/registry/internal/natstest"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// TestLastSequenceIsTheLastEvent: the head a read model compares its position with is the last
// event's sequence. Key messages follow the events of their append, so on a stream whose last
// message is a key's, a read model that applied every event would otherwise never reach the head.
func TestLastSequenceIsTheLastEvent(t *testing.T) {
	t.Parallel()
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprintf("R%d", r), func(t *testing.T) {
			url := natstest.RunServer(t).ClientURL()
			if r == 3 {
				url = natstest.RunCluster(t, 3, natstest.SyncAlways()).ClientURL()
			}
			js := newJS(t, url)
			st, err := jetstore.New(js, jetstore.Config{Stream: "HEAD", Replicas: r, KeyPrefix: jetstore.DefaultKeyPrefix})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.EnsureStream(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if head, err := st.LastSequence(ctxT(t)); err != nil || head != 0 {
				t.Fatalf("LastSequence of an empty stream: %d, %v; want 0", head, err)
			}
			agg := newAgg(t)
			res := mustAppendKeys(t, st, agg, 0, newEvents(2, "Registered"), jetstore.Claim("hostname", "web-01"))
			stream, err := js.Stream(ctxT(t), "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			if last := stream.CachedInfo().State.LastSeq; last <= res.LastSequence {
				t.Fatalf("the stream's last message %d is not the key's after the events' %d: the test shows nothing", last, res.LastSequence)
			}
			head, err := st.LastSequence(ctxT(t))
			if err != nil || head != res.LastSequence {
				t.Fatalf("LastSequence = %d, %v; want the last event's %d", head, err, res.LastSequence)
			}
			var read uint64
			if err := st.ReadAll(ctxT(t), 0, func(ev jetstore.RecordedEvent) error { read = ev.Sequence; return nil }); err != nil || read != head {
				t.Fatalf("ReadAll read up to %d, %v; want the head %d", read, err, head)
			}
		})
	}
}
