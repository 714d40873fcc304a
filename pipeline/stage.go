package pipeline

import (
	"context"
	"errors"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/domainflow/domainflow/schemas"
)

// Stage is the logic of one pipeline step. Process is called with one
// micro-batch of rows from a single input partition, in partition order, and
// returns what to publish. It must not keep in after it returns; records it
// returns are released by the runner once they are written.
//
// A Stage reports rows it cannot handle in Result.Dead; they go to the
// dead-letter topic and the rest of the batch proceeds. An error wrapping
// ErrRetry makes the runner retry the whole batch with backoff (a service the
// stage depends on is away); any other error dead-letters every row of the
// batch with reason processing-error.
type Stage interface {
	Process(ctx context.Context, in arrow.Record) (Result, error)
}

// StageFunc adapts a function to the Stage interface.
type StageFunc func(ctx context.Context, in arrow.Record) (Result, error)

// Process calls f(ctx, in).
func (f StageFunc) Process(ctx context.Context, in arrow.Record) (Result, error) { return f(ctx, in) }

// Result is what a Stage returns for one input batch.
type Result struct {
	// Out holds the records to publish. Each is written to Output.Topic, or to
	// the runner's default output topic when Topic is empty.
	Out []Output
	// Dead lists the input rows that could not be processed.
	Dead []DeadRow
	// Dropped lists the input rows the stage dropped, in input order, as
	// duplicates of rows it already handled (an upstream stage re-sent them
	// after a crash). They are neither published nor dead-lettered, but
	// counted (Counts.Dropped, domainflow_duplicates_total), so that input
	// rows = output rows + dead letters + dropped duplicates always holds
	// for a one-to-one stage.
	Dropped []int
}

// Output is one record to publish.
type Output struct {
	Topic  string
	Record arrow.Record
	// Partition is the partition of Topic the record is written to when
	// PartitionSet is true; otherwise it goes to the input record's
	// partition (the default, which keeps each input partition's rows in
	// one output partition). A stage that funnels every partition's rows
	// into one ordered stream (the routing stage's parked rows) sets it.
	Partition    int
	PartitionSet bool
}

// DeadRow marks row Row of the input batch as not processable.
type DeadRow struct {
	Row    int
	Reason schemas.Reason
	Err    error
}

// ErrRetry marks a stage error as transient: the runner retries the batch with
// backoff instead of dead-lettering it. Wrap it: fmt.Errorf("embed: %w: %v",
// pipeline.ErrRetry, err).
var ErrRetry = errors.New("retryable")

// Identity is the stage that publishes every input row unchanged. The runtime
// tests and throughput benchmarks run it.
var Identity Stage = StageFunc(func(_ context.Context, in arrow.Record) (Result, error) {
	in.Retain()
	return Result{Out: []Output{{Record: in}}}, nil
})
