package natstest

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CreateAfterDelete calls create, which makes a stream whose namesake was just deleted, until it
// succeeds: the server removes a deleted stream's store in the background, and until it is gone
// creating one of the same name fails with 10049 ("error creating store for stream"). Any other
// error, or 10049 for longer than 30s, fails the test.
func CreateAfterDelete(t testing.TB, create func() error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := create()
		if err == nil {
			return
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10049 || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}
