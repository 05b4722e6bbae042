package commandservice

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/cim-infra/registry/internal/embedded"
	"github.com/cim-infra/registry/internal/servicemain"
	"github.com/cim-infra/registry/pkg/jetstore"
)

// ServiceName is the name the service logs under and gives its NATS connection.
const ServiceName = "command-service"

// Defaults of the service's own settings.
const (
	DefaultCacheSize       = 10000
	DefaultMaxRetries      = 5
	DefaultRequestTimeout  = 5 * time.Second
	DefaultMaxRequestBytes = 64 << 10
	DefaultMaxInFlight     = 1024
	DefaultResultsBucket   = "CIM_COMMAND_RESULTS"
	DefaultResultsTTL      = 24 * time.Hour
	// DefaultResultsMaxBytes bounds the results bucket: about a million records.
	DefaultResultsMaxBytes = 256 << 20
	DefaultMaxClockSkew    = 5 * time.Minute
	DefaultSnapshotBucket  = "CIM_COMMAND_SNAPSHOTS"
	// DefaultPrimeMaxAggregates bounds the aggregates -prime-snapshots folds in memory at once.
	DefaultPrimeMaxAggregates = 200_000
	DefaultHTTPAddr           = ":8080"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("commandservice: invalid configuration")

// Config holds every setting of the command service. RegisterFlags defines one flag per field
// (and those of the shared packages); config.Parse fills them from flags and environment.
type Config struct {
	servicemain.Common
	Embedded embedded.Config

	// Stream, Replicas and Duplicates describe the event stream (jetstore.Config).
	Stream     string
	Replicas   int
	Duplicates time.Duration
	// NoUniqueKeys turns off the uniqueness of hostnames and asset tags among live resources
	// (the store's key claims, jetstore.Config.KeyPrefix), e.g. while an existing stream is
	// without the key subjects.
	NoUniqueKeys bool

	Options

	// PrimeSnapshots makes Run write every aggregate's snapshot from the stream and exit
	// (PrimeSnapshots), folding at most PrimeMaxAggregates at once.
	PrimeSnapshots     bool
	PrimeMaxAggregates int

	// IndexKeys makes Run claim the keys of every live resource of the stream (IndexKeys) and
	// exit without serving.
	IndexKeys bool
}

// Options are the settings of one service instance on a connection, apart from the process
// wiring (connection, HTTP server, logging) that Run does.
type Options struct {
	// CacheSize bounds the number of aggregates whose state is kept in memory.
	CacheSize int
	// MaxRetries bounds the decide-and-append attempts after a concurrency conflict.
	MaxRetries int
	// RequestTimeout bounds the processing of one request, store round trips included.
	RequestTimeout time.Duration
	// MaxRequestBytes bounds the size of a request body.
	MaxRequestBytes int
	// MaxInFlight bounds the requests an instance processes at once; beyond it a request is
	// answered 503 overloaded at once, unprocessed.
	MaxInFlight int
	// ResultsBucket is the key-value bucket recording the outcomes of commands sent with their
	// own command id that wrote nothing: changed nothing, or refused (see the package
	// documentation), kept ResultsTTL, at most ResultsMaxBytes when the service creates it.
	ResultsBucket   string
	ResultsTTL      time.Duration
	ResultsMaxBytes int64
	// MaxClockSkew bounds how far a command's timestamp may be from the service's clock.
	MaxClockSkew time.Duration
	// SnapshotBucket is the key-value bucket of the snapshots of evicted aggregates, read on
	// cache misses (see snapshots.go); NoSnapshots turns them off (every miss reads the
	// aggregate's whole history).
	SnapshotBucket string
	NoSnapshots    bool

	hooks *testHooks
}

// RegisterFlags defines every flag of the service on fs, storing into c, with c's current
// values (or the defaults) as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, "", DefaultHTTPAddr) // no NATS URL: the embedded server
	c.Embedded.RegisterFlags(fs)
	c.setDefaults()
	fs.StringVar(&c.Stream, "stream", c.Stream, "name of the JetStream event stream, created if missing")
	fs.IntVar(&c.Replicas, "stream-replicas", c.Replicas, "replicas of the event stream and of the results bucket when created: 1, 3 or 5")
	fs.DurationVar(&c.Duplicates, "duplicates-window", c.Duplicates, "de-duplication window of the event stream (Nats-Msg-Id), when created")
	fs.Var(inverted{&c.NoUniqueKeys}, "unique-keys", "keep hostnames and asset tags unique among live resources, claimed on the event stream's key subjects ("+jetstore.DefaultKeyPrefix+".>, which the stream must capture); false: not checked")
	fs.IntVar(&c.CacheSize, "cache-size", c.CacheSize, "number of aggregate states kept in memory (least recently used are evicted)")
	fs.IntVar(&c.MaxRetries, "max-retries", c.MaxRetries, "attempts to decide and append again after a concurrency conflict, before replying 409")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "time allowed to process one request, store round trips included (503 beyond)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "largest request body accepted, in bytes (400 beyond)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight, "requests processed at once by this instance; beyond it a request is answered 503 overloaded at once, unprocessed (the client may retry it)")
	fs.StringVar(&c.ResultsBucket, "results-bucket", c.ResultsBucket, "key-value bucket recording the outcomes of commands sent with their own command id that wrote nothing (changed nothing, or refused), so that their re-sends get the same reply")
	fs.DurationVar(&c.ResultsTTL, "results-ttl", c.ResultsTTL, "how long the outcome of a command that wrote nothing (changed nothing, or refused) is kept for its re-sends")
	fs.Int64Var(&c.ResultsMaxBytes, "results-max-bytes", c.ResultsMaxBytes, "size limit of the results bucket when created; when it is full, outcomes are replied but not recorded (counted in cim_command_service_results_records_total{outcome=\"bucket_full\"})")
	fs.DurationVar(&c.MaxClockSkew, "max-clock-skew", c.MaxClockSkew, "largest distance between a command's timestamp and the service's clock; a command further off is refused (400)")
	fs.StringVar(&c.SnapshotBucket, "snapshot-bucket", c.SnapshotBucket, "key-value bucket of the snapshots of aggregates evicted from the cache, read when they are needed again")
	fs.Var(inverted{&c.NoSnapshots}, "snapshots", "write a snapshot of every aggregate evicted from the cache (and of those cached, on shutdown), and load cache misses from their snapshot plus the events after it; false: read the whole history on every miss")
	fs.BoolVar(&c.PrimeSnapshots, "prime-snapshots", c.PrimeSnapshots, "write the snapshot of every aggregate of the event stream into -snapshot-bucket, reading the stream once per pass, then exit without serving (after importing a history or losing the bucket)")
	fs.IntVar(&c.PrimeMaxAggregates, "prime-max-aggregates", c.PrimeMaxAggregates, "with -prime-snapshots: aggregates folded in memory at once (each holds its state and those of its events that carry a command id); more make more passes over the stream")
	fs.BoolVar(&c.IndexKeys, "index-keys", c.IndexKeys, "claim the hostname and asset tag of every live resource of the event stream on its key subjects, report each key that several live resources hold (claimed for none), then exit without serving; idempotent, safe while the service serves (after adding the key subjects to a stream written without them)")
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = jetstore.DefaultStream
	}
	if c.Replicas == 0 {
		c.Replicas = jetstore.DefaultReplicas
	}
	if c.Duplicates == 0 {
		c.Duplicates = jetstore.DefaultDuplicates
	}
	c.Options = c.Options.withDefaults()
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = servicemain.DefaultShutdownTimeout
	}
	if c.PrimeMaxAggregates == 0 {
		c.PrimeMaxAggregates = DefaultPrimeMaxAggregates
	}
}

// DefaultOptions returns the default settings of an instance.
func DefaultOptions() Options { return Options{}.withDefaults() }

// withDefaults sets the zero fields of o to their defaults.
func (o Options) withDefaults() Options {
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.ResultsBucket == "" {
		o.ResultsBucket = DefaultResultsBucket
	}
	if o.ResultsTTL == 0 {
		o.ResultsTTL = DefaultResultsTTL
	}
	if o.ResultsMaxBytes == 0 {
		o.ResultsMaxBytes = DefaultResultsMaxBytes
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	if o.SnapshotBucket == "" {
		o.SnapshotBucket = DefaultSnapshotBucket
	}
	return o
}

// inverted is a boolean flag that stores its negation, so that a setting on by default can be
// a zero-value false field.
type inverted struct{ p *bool }

func (v inverted) String() string {
	if v.p == nil {
		return "true"
	}
	return strconv.FormatBool(!*v.p)
}

func (v inverted) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = !b
	return nil
}

func (v inverted) IsBoolFlag() bool { return true }

func (o Options) validate() error {
	switch {
	case o.CacheSize < 1:
		return fmt.Errorf("%w: -cache-size %d, want 1 or more", ErrInvalidConfig, o.CacheSize)
	case o.MaxRetries < 0:
		return fmt.Errorf("%w: -max-retries %d is negative", ErrInvalidConfig, o.MaxRetries)
	case o.RequestTimeout <= 0:
		return fmt.Errorf("%w: -request-timeout %s, want more than 0", ErrInvalidConfig, o.RequestTimeout)
	case o.MaxRequestBytes < 256:
		return fmt.Errorf("%w: -max-request-bytes %d, want 256 or more", ErrInvalidConfig, o.MaxRequestBytes)
	case o.MaxInFlight < 1:
		return fmt.Errorf("%w: -max-in-flight %d, want 1 or more", ErrInvalidConfig, o.MaxInFlight)
	case o.ResultsTTL <= 0:
		return fmt.Errorf("%w: -results-ttl %s, want more than 0", ErrInvalidConfig, o.ResultsTTL)
	case o.ResultsMaxBytes < 1<<10:
		return fmt.Errorf("%w: -results-max-bytes %d, want 1024 or more", ErrInvalidConfig, o.ResultsMaxBytes)
	case o.MaxClockSkew <= 0:
		return fmt.Errorf("%w: -max-clock-skew %s, want more than 0", ErrInvalidConfig, o.MaxClockSkew)
	}
	return nil
}

// storeConfig is the event store's configuration.
func (c Config) storeConfig() jetstore.Config {
	sc := jetstore.Config{Stream: c.Stream, Replicas: c.Replicas, Duplicates: c.Duplicates}
	if !c.NoUniqueKeys {
		sc.KeyPrefix = jetstore.DefaultKeyPrefix
	}
	return sc
}
