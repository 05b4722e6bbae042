package jetstore

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// An atomic batch the server discarded as incomplete (its leader changed while it was sent)
// wrote nothing: the caller may send it again, as after any outage.
func TestIncompleteBatchIsUnavailable(t *testing.T) {
	t.Parallel()
	incomplete := &jetstream.APIError{Code: 400, ErrorCode: jetstreamext.JSErrCodeBatchPublishIncomplete, Description: "atomic publish batch is incomplete"}
	if err := classify(incomplete); !IsUnavailable(err) || !errors.Is(err, incomplete) {
		t.Fatalf("classify(%v) = %v, want ErrUnavailable wrapping it", incomplete, err)
	}
	other := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}
	if err := classify(other); IsUnavailable(err) {
		t.Fatalf("classify(%v) = %v, want it as is", other, err)
	}
}
