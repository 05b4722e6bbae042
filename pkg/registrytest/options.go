package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/inventory"
)

// ErrInvalidOption is wrapped by every error an Option returns.
var ErrInvalidOption = errors.New("registrytest: invalid option")

// Option configures a registry.
type Option func(*config) error

type config struct {
	cluster    bool
	metrics    bool
	clientOpts []api.ClientOption
	setups     []func(context.Context, *api.Client) error
	log        io.Writer
}

// WithCluster runs the registry on a JetStream cluster of ClusterSize nodes on loopback, with
// every stream and bucket replicated on all of them (R3), as in production.
func WithCluster() Option {
	return func(c *config) error {
		c.cluster = true
		return nil
	}
}

// WithMetricsProjector runs the metrics projector too: its figures are then in Metrics, current
// to the stream sequence that WaitForMetrics waits for.
func WithMetricsProjector() Option {
	return func(c *config) error {
		c.metrics = true
		return nil
	}
}

// WithClientOptions builds Client with these options (time-out, retries...).
func WithClientOptions(opts ...api.ClientOption) Option {
	return func(c *config) error {
		c.clientOpts = append(c.clientOpts, opts...)
		return nil
	}
}

// WithSetup runs setup once the registry serves, before Start or New returns, with Client: to
// preload the resources a test needs. Several setups run in the order given; the first error
// fails the start.
func WithSetup(setup func(ctx context.Context, c *api.Client) error) Option {
	return func(c *config) error {
		if setup == nil {
			return fmt.Errorf("%w: nil setup", ErrInvalidOption)
		}
		c.setups = append(c.setups, setup)
		return nil
	}
}

// WithInventory preloads the resources of an inventory file in cimctl import's format (CSV with
// a header row, or JSON lines, told apart by the extension; see pkg/inventory) once the registry
// serves, before Start or New returns. Any row that fails fails the start, naming its line.
// It runs in order with the setups of WithSetup.
func WithInventory(path string) Option {
	return func(c *config) error {
		format, ok := inventory.FormatOf(path)
		if !ok {
			return fmt.Errorf("%w: inventory %s: the name ends neither in .csv nor in .jsonl or .ndjson", ErrInvalidOption, path)
		}
		c.setups = append(c.setups, func(ctx context.Context, client *api.Client) error {
			return preload(ctx, client, path, format)
		})
		return nil
	}
}

// preload imports the inventory file at path into the registry.
func preload(ctx context.Context, client *api.Client, path, format string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("registrytest: inventory: %w", err)
	}
	defer f.Close()
	rows, err := inventory.NewReader(f, format)
	if err != nil {
		return fmt.Errorf("registrytest: inventory %s: %w", path, err)
	}
	var failed []error
	sum, err := inventory.Import(ctx, client, rows, inventory.Options{OnRow: func(r inventory.RowResult) {
		if r.Err != nil {
			failed = append(failed, fmt.Errorf("line %d: %w", r.Line, r.Err))
		}
	}})
	if err != nil {
		return fmt.Errorf("registrytest: inventory %s: %w", path, err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("registrytest: inventory %s: %d of %d rows failed: %w", path, sum.Failed, sum.Rows, errors.Join(failed...))
	}
	return nil
}

// WithLog writes the services' logs to w, as JSON lines (none by default): for a test that
// fails without saying why.
func WithLog(w io.Writer) Option {
	return func(c *config) error {
		if w == nil {
			return fmt.Errorf("%w: nil log writer", ErrInvalidOption)
		}
		c.log = w
		return nil
	}
}
