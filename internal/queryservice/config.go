package queryservice

import (
	"flag"
	"fmt"
	"time"

	"github.com/cim-infra/registry/internal/projector"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// ServiceName names the service in logs, in its NATS connection and in its dead letters'
// subject (cim.dlq.query-service).
const ServiceName = "query-service"

// DefaultHTTPAddr is the operations server's default address.
const DefaultHTTPAddr = ":8083"

// Config is every setting of the service.
type Config struct {
	servicemain.Common
	Options Options
}

// Options are the query service's own settings.
type Options struct {
	// Name names the dead letters' subject and message ids (default ServiceName).
	Name string
	// Stream is the event stream (default CIM_EVENTS), SubjectPrefix its subjects' prefix
	// (default cim.evt).
	Stream        string
	SubjectPrefix string
	// ConsumerPrefix starts the names of the ordered consumers ("<prefix>_<n>"); default
	// "query-service-" and a random suffix, so that each instance's consumers are its own.
	ConsumerPrefix string
	// ConsumerInactive is how long the server keeps a consumer nobody reads (after a crash).
	ConsumerInactive time.Duration
	// BatchSize is the most events applied in one commit while catching up.
	BatchSize int
	// ReadyMaxLag: once caught up, readiness fails while the model is more than this many
	// events behind the stream (0: never).
	ReadyMaxLag int
	// DefaultWait and MaxWait bound the wait for a query's min_sequence.
	DefaultWait time.Duration
	MaxWait     time.Duration
	// MaxInFlight bounds the requests processed at once; beyond, a request gets 503 overloaded.
	MaxInFlight int
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes int
	// SnapshotBucket is the Object Store bucket of the model's snapshot (created if missing, with
	// SnapshotReplicas); NoSnapshots builds every model from the first event and writes none.
	SnapshotBucket   string
	SnapshotReplicas int
	NoSnapshots      bool
	// SnapshotInterval is how often an instance writes the snapshot when its model is newer
	// than the stored one.
	SnapshotInterval time.Duration
	// DeadLetter names the stream of events the model could not apply.
	DeadLetter projector.DeadLetterConfig
}

func (o *Options) fillDefaults() {
	if o.Name == "" {
		o.Name = ServiceName
	}
	if o.Stream == "" {
		o.Stream = jetstore.DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = jetstore.DefaultSubjectPrefix
	}
	if o.ConsumerInactive == 0 {
		o.ConsumerInactive = 30 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.ReadyMaxLag == 0 {
		o.ReadyMaxLag = 100000
	}
	if o.DefaultWait == 0 {
		o.DefaultWait = 2 * time.Second
	}
	if o.MaxWait == 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 256
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 64 * 1024
	}
	if o.SnapshotBucket == "" {
		o.SnapshotBucket = "CIM_QUERY_SNAPSHOTS"
	}
	if o.SnapshotReplicas == 0 {
		o.SnapshotReplicas = 1
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = 5 * time.Minute
	}
	if o.DeadLetter.Stream == "" {
		o.DeadLetter.Stream = "CIM_DLQ"
	}
	if o.DeadLetter.SubjectPrefix == "" {
		o.DeadLetter.SubjectPrefix = "cim.dlq"
	}
}

func (o *Options) validate() error {
	switch {
	case o.BatchSize < 1 || o.BatchSize > 100000:
		return fmt.Errorf("queryservice: -batch-size %d: want 1 to 100000", o.BatchSize)
	case o.ReadyMaxLag < 0:
		return fmt.Errorf("queryservice: -ready-max-lag %d: want 0 or more", o.ReadyMaxLag)
	case o.DefaultWait <= 0 || o.MaxWait < o.DefaultWait:
		return fmt.Errorf("queryservice: -default-wait %s, -max-wait %s: want 0 < default <= max", o.DefaultWait, o.MaxWait)
	case o.MaxInFlight < 1:
		return fmt.Errorf("queryservice: -max-in-flight %d: want 1 or more", o.MaxInFlight)
	case o.SnapshotInterval < 0:
		return fmt.Errorf("queryservice: -snapshot-interval %s is negative", o.SnapshotInterval)
	case o.MaxRequestBytes < 1:
		return fmt.Errorf("queryservice: -max-request-bytes %d: want 1 or more", o.MaxRequestBytes)
	}
	return nil
}

// RegisterFlags defines every flag the service accepts on fs, with the service's defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	o := &c.Options
	o.fillDefaults()
	c.Common.RegisterFlags(fs, servicemain.DefaultNATSURL, DefaultHTTPAddr)
	fs.StringVar(&o.Stream, "stream", o.Stream, "event stream the model is built from")
	fs.StringVar(&o.SubjectPrefix, "subject-prefix", o.SubjectPrefix, "subject prefix of the event stream (events on <prefix>.<aggregate type>.<id>)")
	fs.StringVar(&o.ConsumerPrefix, "consumer-prefix", o.ConsumerPrefix, "name prefix of the instance's ordered consumers (empty: query-service- and a random suffix)")
	fs.DurationVar(&o.ConsumerInactive, "consumer-inactive", o.ConsumerInactive, "how long the server keeps an ordered consumer nobody reads (after a crash)")
	fs.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "most events applied to the model in one commit (1 to 100000)")
	fs.IntVar(&o.ReadyMaxLag, "ready-max-lag", o.ReadyMaxLag, "once caught up, /readyz fails while the model is more than this many events behind the stream (0: never)")
	fs.DurationVar(&o.DefaultWait, "default-wait", o.DefaultWait, "how long a query with min_sequence waits for the model when it gives no wait_ms")
	fs.DurationVar(&o.MaxWait, "max-wait", o.MaxWait, "the longest wait_ms a query may ask for")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", o.MaxInFlight, "most queries processed at once; beyond, a query gets 503 overloaded")
	fs.IntVar(&o.MaxRequestBytes, "max-request-bytes", o.MaxRequestBytes, "largest request body accepted")
	fs.StringVar(&o.SnapshotBucket, "snapshot-bucket", o.SnapshotBucket, "JetStream Object Store bucket of the model's snapshot, from which a new instance starts (created if missing)")
	fs.IntVar(&o.SnapshotReplicas, "snapshot-replicas", o.SnapshotReplicas, "replicas of the snapshot bucket when the service creates it (1, 3 or 5)")
	fs.DurationVar(&o.SnapshotInterval, "snapshot-interval", o.SnapshotInterval, "how often an instance writes the snapshot when its model is newer than the stored one")
	fs.BoolVar(&o.NoSnapshots, "no-snapshots", o.NoSnapshots, "build the model from the first event and write no snapshot")
	fs.StringVar(&o.DeadLetter.Stream, "dead-letter-stream", o.DeadLetter.Stream, "stream keeping events the model cannot apply (subject cim.dlq.query-service, reason in header Cim-Dlq-Reason)")
}
