package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	cr "github.com/cim-infra/registry/domain/computeresource"
	"github.com/cim-infra/registry/pkg/api"
)

// Kinds of the command service's refusals of a register for a resource that is registered:
// live, or decommissioned (which refuses every command).
const (
	kindAlreadyRegistered = "already_registered"
	kindDecommissioned    = "decommissioned"
)

// DefaultConcurrency is the number of rows Import works on at once when Options.Concurrency is 0.
const DefaultConcurrency = 8

// Options of Import.
type Options struct {
	// Concurrency is the number of rows in flight (default DefaultConcurrency). The commands of
	// one row are sent one after the other.
	Concurrency int
	// DryRun reads each row's resource and plans its commands without sending any.
	DryRun bool
	// OnRow, if set, is called with the outcome of every row, in the order they finish, from the
	// goroutine that called Import.
	OnRow func(RowResult)
}

// RowResult is the outcome of one row.
type RowResult struct {
	Line       int
	ResourceID string
	Hostname   string
	// Steps are the commands sent (or, in a dry run, planned), in order.
	Steps []string
	// Written counts the commands that wrote events, Duplicates those answered as already
	// applied (a re-run), Events the events written.
	Written, Duplicates, Events int
	// Err is nil when the resource is as the row says; else a *RowError (the row is not valid,
	// or conflicts with the resource, see Plan) or a *StepError (the service refused a command
	// or could not be reached).
	Err error
}

// StepError is a command of a row's plan that failed; the commands before it were applied.
type StepError struct {
	// Command is the command's name, or "get" for the read of the resource's state.
	Command string
	// Err is the client's error: an *api.Error for a reply of the service.
	Err error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Command, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Summary counts the outcomes of an import.
type Summary struct {
	Rows, Failed                int
	Written, Duplicates, Events int
}

// Import reads every row of rows and brings each row's resource to the row's values (see Plan),
// Options.Concurrency rows at a time. A failed row does not stop the others: its RowResult
// carries the reason. The error is not nil when the import stopped before the end of the file:
// ctx was cancelled, or the file could not be read on.
//
// A row starts with its register, with an id the client makes up. When it writes, the resource
// is new and no earlier run can have sent its other commands: they follow with ids the client
// makes up too, which spares the service a look-up of each id. A re-run of the same file (after
// an interruption, or to finish the failed rows) sends only what is missing: the register is
// refused (already registered), the resource's state is read, and the plan from that state,
// with the ids Plan derives, holds only the steps not yet applied. So nothing is written twice.
// Two imports of one file at the same time write no event twice either (a command that
// changes nothing writes nothing), but one of them may fail a row on a policy the other added.
func Import(ctx context.Context, c *api.Client, rows Reader, opts Options) (Summary, error) {
	n := opts.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reader is not waited for once ctx is done: a Read of standard input may block until
	// the user types. Row errors travel with the rows, so only the workers send results.
	type job struct {
		row Row
		err error
	}
	jobs := make(chan job)
	readDone := make(chan error, 1)
	go func() {
		defer close(jobs)
		for {
			row, err := rows.Read()
			var re *RowError
			switch {
			case errors.Is(err, io.EOF):
				readDone <- nil
				return
			case err != nil && !errors.As(err, &re):
				readDone <- err
				return
			}
			select {
			case jobs <- job{row, err}:
			case <-ctx.Done():
				readDone <- nil
				return
			}
		}
	}()
	results := make(chan RowResult, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				var j job
				var ok bool
				select {
				case <-ctx.Done():
					return
				case j, ok = <-jobs:
				}
				var re *RowError
				switch {
				case !ok:
					return
				case errors.As(j.err, &re):
					results <- RowResult{Line: re.Line, ResourceID: re.ID, Hostname: re.Hostname, Err: j.err}
				default:
					results <- importRow(ctx, c, j.row, opts.DryRun)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var sum Summary
	for r := range results {
		sum.Rows++
		if r.Err != nil {
			sum.Failed++
		}
		sum.Written += r.Written
		sum.Duplicates += r.Duplicates
		sum.Events += r.Events
		if opts.OnRow != nil {
			opts.OnRow(r)
		}
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if err := <-readDone; err != nil {
		return sum, fmt.Errorf("inventory: reading stopped after %d rows: %w", sum.Rows, err)
	}
	return sum, nil
}

// importRow sends the commands of one row: register, then the plan from the registered state.
func importRow(ctx context.Context, c *api.Client, row Row, dryRun bool) RowResult {
	res := RowResult{Line: row.Line, ResourceID: row.ResourceID(), Hostname: row.Hostname}
	if dryRun {
		current, err := getResource(ctx, c, res.ResourceID)
		if err != nil {
			res.Err = err
			return res
		}
		steps, err := Plan(row, current)
		for _, s := range steps {
			res.Steps = append(res.Steps, s.Command)
		}
		res.Err = err
		return res
	}
	// The register goes with an id the client makes up: the service need not look it up, and
	// a resource that exists refuses it (already registered, decommissioned) whatever its id.
	steps, err := plan(row, nil, true)
	if err != nil {
		res.Err = err
		return res
	}
	var current *api.Resource
	reply, err := res.send(ctx, c, steps[0])
	var apiErr *api.Error
	registered := false // before this run
	switch {
	case err == nil && !reply.Duplicate:
		current = &api.Resource{ID: res.ResourceID, Hostname: row.Hostname, ResourceType: row.ResourceType,
			Status: cr.StatusProvisioning.String(), Version: reply.Version}
	case err == nil || errors.As(err, &apiErr) && (apiErr.Kind == kindAlreadyRegistered || apiErr.Kind == kindDecommissioned):
		registered = true
		// Registered before (by an earlier run of this file, or otherwise): plan from its state.
		if current, err = getResource(ctx, c, res.ResourceID); err != nil {
			res.Err = err
			return res
		}
	default:
		res.Err = err
		return res
	}
	// After a register that wrote, no earlier run can have sent this resource's other commands:
	// the client makes their ids up and tells the service so, which spares it a look-up per
	// command. A re-run reads the state and plans with derived ids (its register is refused).
	clientIDs := !registered
	// A refusal of the domain after register means the state was not the one planned from
	// (another writer changed the resource meanwhile): plan once more from the state as it is.
	for replanned := false; ; replanned = true {
		steps, err = plan(row, current, clientIDs && !replanned)
		if err != nil {
			res.Err = err
			return res
		}
		var failed error
		for _, s := range steps {
			if _, err := res.send(ctx, c, s); err != nil {
				failed = err
				break
			}
		}
		if failed == nil || replanned || !errors.As(failed, &apiErr) || apiErr.Code != api.CodeConflict {
			res.Err = failed
			return res
		}
		if current, err = getResource(ctx, c, res.ResourceID); err != nil {
			res.Err = err
			return res
		}
	}
}

// send sends one step and counts its outcome.
func (res *RowResult) send(ctx context.Context, c *api.Client, s Step) (*api.CommandReply, error) {
	res.Steps = append(res.Steps, s.Command)
	var reply api.CommandReply
	if err := c.Do(ctx, api.CommandSubject(s.Command), s.Request, &reply); err != nil {
		return nil, &StepError{Command: s.Command, Err: err}
	}
	if reply.Duplicate {
		res.Duplicates++
	} else if len(reply.Events) > 0 {
		res.Written++
		res.Events += len(reply.Events)
	}
	return &reply, nil
}

// getResource reads a resource's state; nil when it was never registered.
func getResource(ctx context.Context, c *api.Client, id string) (*api.Resource, error) {
	r, err := c.Get(ctx, api.Get{AggregateID: id})
	var apiErr *api.Error
	if errors.As(err, &apiErr) && apiErr.Code == api.CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, &StepError{Command: "get", Err: err}
	}
	return r, nil
}
