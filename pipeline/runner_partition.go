package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// The runner's side of PartitionStage: restoring a partition's state when
// the runner takes a partition up, and saving it after every batch.

// errStaleGeneration: a batch's state was not saved because the source
// joined a later group generation meanwhile.
var errStaleGeneration = errors.New("the consumer-group generation of the batch has ended")

// generationer is the optional capability of a Source to count the consumer
// group generations it has joined: after a rebalance every partition may have
// been processed by another member in between.
type generationer interface{ Generation() int64 }

// checkGeneration forgets every partition's position when the source joined
// a new group generation since the last batch: the partitions this process
// keeps may have been processed by another member meanwhile.
func (r *Runner) checkGeneration() {
	if g := r.gen.Load(); g != r.seenGen.Load() {
		r.seenGen.Store(g)
		clear(r.next)
		clear(r.skip)
	}
}

// resume returns the messages of g to process. When g does not continue where
// this runner left its partition, it waits until every batch prepared before
// is finished (so the store holds this process's latest snapshot), loads the
// partition's latest snapshot and restores the stage from it; messages below
// the snapshot's offset were handled already and are dropped (counted as
// duplicates).
func (r *Runner) resume(ctx context.Context, g *partitionBatch, st *batchStats) ([]kafka.Message, error) {
	p := Partition{Topic: g.topic, Partition: g.partition}
	first := g.msgs[0].Offset
	if next, ok := r.next[p]; !ok || next != first {
		if err := r.restore(ctx, p, first); err != nil {
			return nil, err
		}
	}
	r.next[p] = g.msgs[len(g.msgs)-1].Offset + 1
	r.done[p] = r.next[p]
	msgs := g.msgs
	if until, ok := r.skip[p]; ok {
		// Another process (or this one, before a crash) handled these
		// messages and saved the snapshot after their outputs were
		// acknowledged.
		var skipped int
		for skipped < len(msgs) && msgs[skipped].Offset < until {
			n := messageRows(msgs[skipped])
			st.in += n
			st.dropped += n
			skipped++
		}
		msgs = msgs[skipped:]
		if len(msgs) > 0 || r.next[p] >= until {
			delete(r.skip, p)
		}
		r.log.Debug("dropped messages handled before the snapshot", "partition", p.String(), "messages", skipped)
	}
	return msgs, nil
}

// restore restores partition p, whose next message is at offset first, from
// its latest snapshot, and notes the messages to drop.
func (r *Runner) restore(ctx context.Context, p Partition, first int64) error {
	delete(r.skip, p)
	if r.cfg.States == nil {
		return nil
	}
	if err := r.waitFinished(ctx); err != nil {
		return err
	}
	var (
		state   []byte
		at, end int64
	)
	err := r.retry(ctx, "load the state of "+p.String(), func(ctx context.Context) error {
		var err error
		if state, at, err = r.cfg.States.Load(ctx, p); err != nil {
			return err
		}
		end, err = r.cfg.States.End(ctx, p)
		return err
	})
	if err != nil {
		return err
	}
	if done, ok := r.done[p]; ok && done == first && at < first {
		// This process handled the partition's messages up to first itself,
		// and its state of them is newer than the snapshot: the save of its
		// last batch was cut off because the group moved on
		// (errStaleGeneration), and the source goes on where that batch
		// ended. Keep the in-memory state, which the batch's outputs were
		// made with, and save it at first: restoring the older snapshot
		// would route the next messages from a state that misses that
		// batch, differently from whoever redelivers it (a document in two
		// domains).
		r.log.Info("partition state kept: this process handled it up to its next message", "partition", p.String(), "snapshot_offset", at, "first_offset", first)
		state, err := r.pstage.Snapshot(p, first)
		if err != nil {
			return fmt.Errorf("stage %s: snapshot of %s: %w", r.cfg.Name, p, err)
		}
		return r.saveStates(ctx, 0, []partitionSnapshot{{p: p, at: first, state: state}})
	}
	if err := r.pstage.Restore(ctx, p, state, at, end); err != nil {
		return fmt.Errorf("stage %s: restore %s from its snapshot at offset %d: %w", r.cfg.Name, p, at, err)
	}
	r.log.Info("partition state restored", "partition", p.String(), "snapshot_offset", at, "first_offset", first, "end_offset", end)
	switch {
	case at > first:
		r.skip[p] = at
	case at < first:
		if at >= 0 {
			r.log.Warn("the partition's snapshot is older than its committed input; redelivered rows may be handled differently than the first time",
				"partition", p.String(), "snapshot_offset", at, "first_offset", first)
		}
		// No snapshot at this point yet: save one before any output, so
		// that whoever handles these messages next starts where this
		// process does (e.g. on the same model version).
		state, err := r.pstage.Snapshot(p, first)
		if err != nil {
			return fmt.Errorf("stage %s: snapshot of %s: %w", r.cfg.Name, p, err)
		}
		if err := r.saveStates(ctx, 0, []partitionSnapshot{{p: p, at: first, state: state}}); err != nil {
			return err
		}
	}
	return nil
}

// applyPending saves p's snapshot at offset first before the message there is
// processed, when the stage has a change pending (see
// PartitionStage.Pending).
func (r *Runner) applyPending(ctx context.Context, p Partition, first int64) error {
	if !r.pstage.Pending(p, first) {
		return nil
	}
	if err := r.waitFinished(ctx); err != nil {
		return err
	}
	state, err := r.pstage.Snapshot(p, first)
	if err != nil {
		return fmt.Errorf("stage %s: snapshot of %s: %w", r.cfg.Name, p, err)
	}
	return r.saveStates(ctx, 0, []partitionSnapshot{{p: p, at: first, state: state}})
}

// messageRows counts the input rows of a message as the runner does: the
// rows of an Arrow message that decodes, else one.
func messageRows(m kafka.Message) int64 {
	d, err := DecodeMessage(m, schemas.Limits{}, nil)
	if err != nil {
		return 1
	}
	defer d.Release()
	return d.Rows()
}

// waitFinished waits until every prepared batch is finished (written, its
// snapshots saved and its input committed, or abandoned after a failure).
func (r *Runner) waitFinished(ctx context.Context) error {
	for r.finished.Load() < r.prepared.Load() {
		if !Sleep(ctx, 5*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// saveStates saves the snapshots of a batch whose outputs are acknowledged,
// retrying with backoff until they are saved or ctx ends.
// A batch fetched in group generation gen (non-zero) is not saved once the
// source has joined a later one: a member that lost its partitions while a
// save was failing (a broker restart) would otherwise write its older state
// over the new owner's (errStaleGeneration).
func (r *Runner) saveStates(ctx context.Context, gen int64, states []partitionSnapshot) error {
	if r.cfg.States == nil {
		return nil
	}
	for _, s := range states {
		err := r.retry(ctx, "save the state of "+s.p.String(), func(ctx context.Context) error {
			if g, ok := r.cfg.Source.(generationer); ok && gen != 0 && g.Generation() != gen {
				return fmt.Errorf("%w: batch of generation %d, source in %d", errStaleGeneration, gen, g.Generation())
			}
			return r.cfg.States.Save(ctx, s.p, s.at, s.state)
		})
		if errors.Is(err, errStaleGeneration) {
			return err
		}
		if err != nil {
			return fmt.Errorf("stage %s: %w", r.cfg.Name, err)
		}
	}
	return nil
}

// retry calls f, each call bounded by WriteTimeout, with backoff until it
// succeeds or ctx ends.
func (r *Runner) retry(ctx context.Context, what string, f func(context.Context) error) error {
	backoff := r.cfg.BackoffMin
	for {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
		err := f(cctx)
		cancel()
		if err == nil || errors.Is(err, errStaleGeneration) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %v)", what, err, context.Cause(ctx))
		}
		r.log.Warn(what+" failed; retrying", "err", err, "backoff", backoff)
		if !Sleep(ctx, backoff) {
			return fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}
