package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotConnected is returned by the NATSConnected check while the connection is down.
var ErrNotConnected = errors.New("nats connection is not connected")

// NATSConnected returns a check that passes while nc is connected to a server.
func NATSConnected(nc *nats.Conn) Check {
	return func(context.Context) error {
		if nc.IsConnected() {
			return nil
		}
		return fmt.Errorf("%w: status %s", ErrNotConnected, nc.Status())
	}
}

// StreamReachable returns a check that passes when the JetStream stream answers a stream info
// request within the check's deadline (the Server's CheckTimeout).
func StreamReachable(js jetstream.JetStream, stream string) Check {
	return func(ctx context.Context) error {
		if _, err := js.Stream(ctx, stream); err != nil {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		return nil
	}
}
