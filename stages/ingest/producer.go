package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// Producer tuning. One Produce call carries up to flushMessages messages or
// flushBytes bytes, or what came within flushAge; pipeline.Producer caps the
// unacknowledged bytes (64 MiB).
const (
	flushMessages = 1000
	flushBytes    = 1 << 20
	flushAge      = 5 * time.Millisecond
)

// producer queues the documents and dead letters of a run on a
// pipeline.Producer and counts what the broker acknowledged. Its methods
// other than completed are called from Run's goroutine; completed runs on
// the Producer's goroutines.
//
// A message the broker refuses for its size (a topic with a smaller
// max.message.bytes than the pipeline's) is not lost: completed hands it
// back, and Run's goroutine writes the refused messages again, waiting for
// each write, in halves until the refused message is alone
// (pipeline.WriteSplitting). A document refused alone becomes a dead letter
// with reason oversize, its value a prefix of the document (see
// pipeline.DeadLetterSpec); a dead letter refused alone is written again
// with a shorter prefix (pipeline.ShrinkDeadLetter).
type producer struct {
	p     *pipeline.Producer
	stage string
	topic string
	log   *slog.Logger
	met   *pipeline.Metrics
	// keep: messages go to the partition they name (Arrow batches, placed
	// by the batcher); dead letters are then spread over the partitions
	// in turn (deadSeq).
	keep    bool
	deadSeq int

	pending      []pipeline.Message
	pendingBytes int
	pendingSince time.Time

	mu       sync.Mutex
	cond     *sync.Cond
	calls    int                // Produce calls of flush not yet completed
	refused  []pipeline.Message // refused for their size, to write again
	docs     int64              // documents acknowledged on topic
	bytes    int64              // their text bytes
	dead     int64              // dead letters acknowledged
	failed   int64              // messages not delivered
	firstErr error              // first delivery error
}

// docData is the WriterData of a document message: its text bytes (for the
// report) and where it came from (for a dead letter, should it be too large
// for the topic). An Arrow batch also has its rows and the line or row
// number of each (rowPos; pos is the first).
type docData struct {
	textBytes   int
	origin, pos string
	rows        int // 0: one JSON document
	rowPos      []string
}

// docs is the number of documents of the message.
func (d docData) docs() int64 { return int64(max(d.rows, 1)) }

func newProducer(cc pipeline.ClientConfig, stage, topic string, log *slog.Logger, met *pipeline.Metrics, keep bool) (*producer, error) {
	p, err := pipeline.NewProducer(pipeline.ProducerConfig{
		Client:        cc,
		BatchSize:     10000,
		BatchTimeout:  flushAge,
		MaxAttempts:   10, // as kafka-go's Writer, which ingest used before
		KeepPartition: keep,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	pr := &producer{p: p, stage: stage, topic: topic, log: log, met: met, keep: keep}
	pr.cond = sync.NewCond(&pr.mu)
	return pr, nil
}

// add queues msg; a full or old queue is handed to the Producer.
func (p *producer) add(msg pipeline.Message) {
	if len(p.pending) == 0 {
		p.pendingSince = time.Now()
	}
	p.pending = append(p.pending, msg)
	p.pendingBytes += len(msg.Key) + len(msg.Value)
	if len(p.pending) >= flushMessages || p.pendingBytes >= flushBytes || time.Since(p.pendingSince) >= flushAge {
		p.flush()
	}
}

// addDoc queues a document message or an Arrow batch of documents, of d.
func (p *producer) addDoc(msg pipeline.Message, d docData) {
	msg.WriterData = d
	p.add(msg)
}

// deadLetter queues a dead letter for a bad input record. origin is the
// input file and pos the record's line or row number ("" when the record is
// a whole file).
func (p *producer) deadLetter(raw []byte, cause error, origin, pos string) {
	reason := schemas.ReasonOf(cause)
	p.log.Debug("dead letter", "reason", reason, "err", cause, "input", origin, "position", pos)
	p.add(pipeline.DeadLetterSpec{
		Topic:        pipeline.TopicDeadLetter,
		Partition:    p.deadPartition(),
		Value:        raw,
		Reason:       reason,
		Err:          cause.Error(),
		Stage:        p.stage,
		OriginTopic:  origin,
		OriginOffset: pos,
		WriterData:   reason,
	}.Message())
}

// deadPartition is the partition of the next dead letter: in turn with
// keep, else 0 (the Producer places it by key).
func (p *producer) deadPartition() int {
	if !p.keep {
		return 0
	}
	p.deadSeq++
	return p.deadSeq
}

// flush writes again what the broker refused for its size, then hands the
// queue to the Producer (which waits while too many bytes are
// unacknowledged).
func (p *producer) flush() {
	p.writeRefused()
	if len(p.pending) == 0 {
		return
	}
	batch := p.pending
	p.pending, p.pendingBytes = make([]pipeline.Message, 0, flushMessages), 0
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	// What was read is delivered even after the run's ctx ended.
	if err := p.p.Produce(context.Background(), batch, p.completed); err != nil {
		p.completed(batch, errsOf(len(batch), err))
	}
}

func errsOf(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// completed is the callback of flush's Produce calls. Messages refused for
// their size go back to Run's goroutine (writeRefused); the others are
// settled.
func (p *producer) completed(msgs []pipeline.Message, errs []error) {
	var refused []pipeline.Message
	if errs != nil {
		var rest []pipeline.Message
		var restErrs []error
		for i, m := range msgs {
			if errs[i] != nil && pipeline.IsTooLarge(errs[i]) {
				refused = append(refused, m)
				continue
			}
			rest = append(rest, m)
			restErrs = append(restErrs, errs[i])
		}
		msgs, errs = rest, restErrs
		if len(refused) > 0 {
			p.log.Debug("batch too large for its topic; writing it again in pieces", "messages", len(refused))
		}
	}
	p.settle(msgs, errs)
	p.mu.Lock()
	p.calls--
	p.refused = append(p.refused, refused...)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// settle counts msgs as delivered, or as failed where errs (nil: none
// failed) has an error.
func (p *producer) settle(msgs []pipeline.Message, errs []error) {
	var docs, bytes, dead, failed, size int64
	var firstErr error
	for i, m := range msgs {
		if errs != nil && errs[i] != nil {
			failed++
			if firstErr == nil {
				firstErr = errs[i]
			}
			continue
		}
		size += int64(len(m.Key) + len(m.Value))
		if m.Topic == pipeline.TopicDeadLetter {
			dead++
			if p.met != nil {
				reason, _ := m.WriterData.(schemas.Reason)
				p.met.DeadLetters.WithLabelValues(p.stage, string(reason)).Inc()
			}
			continue
		}
		d, _ := m.WriterData.(docData)
		docs += d.docs()
		bytes += int64(d.textBytes)
	}
	if failed > 0 {
		p.log.Warn("delivery failed", "messages", failed, "err", firstErr)
	}
	if p.met != nil {
		p.met.RecordsOut.WithLabelValues(p.stage, p.topic).Add(float64(docs))
		p.met.Bytes.WithLabelValues(p.stage, "out").Add(float64(size))
	}
	p.mu.Lock()
	p.docs += docs
	p.bytes += bytes
	p.dead += dead
	p.failed += failed
	if p.firstErr == nil {
		p.firstErr = firstErr
	}
	p.mu.Unlock()
}

// writeRefused writes again, waiting for each write, the messages the
// broker refused for their size.
func (p *producer) writeRefused() {
	p.mu.Lock()
	refused := p.refused
	p.refused = nil
	p.mu.Unlock()
	if len(refused) == 0 {
		return
	}
	// writeSync and tooLarge settle every message, so no error is left.
	_ = pipeline.WriteSplitting(context.Background(), refused, p.writeSync, p.tooLarge)
}

// writeSync produces msgs, waits for them and settles them, but for a size
// refusal, which it returns to pipeline.WriteSplitting as a
// pipeline.WriteErrors (with the messages it refused).
func (p *producer) writeSync(ctx context.Context, msgs ...pipeline.Message) error {
	res := make(chan []error, 1)
	if err := p.p.Produce(ctx, msgs, func(_ []pipeline.Message, errs []error) { res <- errs }); err != nil {
		res <- errsOf(len(msgs), err)
	}
	errs := <-res
	if errs == nil {
		p.settle(msgs, nil)
		return nil
	}
	var ok []pipeline.Message
	var okErrs []error
	tooLarge := false
	for i, e := range errs {
		if e != nil && pipeline.IsTooLarge(e) {
			tooLarge = true
			continue
		}
		ok = append(ok, msgs[i])
		okErrs = append(okErrs, e)
	}
	if !tooLarge {
		p.settle(msgs, errs)
		return nil
	}
	// Settle what was acknowledged or failed otherwise; hand back the size
	// refusals. A message failed otherwise is not written again: its nil
	// entry keeps WriteSplitting from doing so.
	p.settle(ok, okErrs)
	for i, e := range errs {
		if e != nil && !pipeline.IsTooLarge(e) {
			errs[i] = nil
		}
	}
	return pipeline.WriteErrors(errs)
}

// tooLarge deals with message m that the broker refused alone for its size:
// a document becomes a dead letter with reason oversize; a dead letter is
// written again with a shorter value, or counted as failed when it has none
// left.
func (p *producer) tooLarge(ctx context.Context, m pipeline.Message, err error) error {
	if m.Topic == pipeline.TopicDeadLetter {
		small, ok := pipeline.ShrinkDeadLetter(m)
		if !ok {
			p.settle([]pipeline.Message{m}, []error{fmt.Errorf("%s refuses even a dead letter without value: %w", m.Topic, err)})
			return nil
		}
		p.log.Warn("dead letter too large for its topic; writing a shorter prefix of its value", "bytes", len(m.Value), "now", len(small.Value))
		return pipeline.WriteSplitting(ctx, []pipeline.Message{small}, p.writeSync, p.tooLarge)
	}
	d, _ := m.WriterData.(docData)
	if d.rows > 0 {
		return p.batchTooLarge(ctx, m, d, err)
	}
	cause := &schemas.DecodeError{Reason: schemas.ReasonOversize,
		Err: fmt.Errorf("document %q: a message of %d bytes is too large for topic %s: %w", m.Key, len(m.Key)+len(m.Value), m.Topic, err)}
	p.log.Warn("document too large for its topic; dead-lettered as oversize", "id", string(m.Key), "bytes", len(m.Value), "topic", m.Topic)
	return p.deadOversize(ctx, pipeline.DeadLetterSpec{Key: m.Key, Value: m.Value, ContentType: schemas.ContentTypeJSON}, d, cause)
}

// deadOversize writes spec (key or partition, value and content type set)
// as a dead letter with reason oversize and cause, from the input position
// of d.
func (p *producer) deadOversize(ctx context.Context, spec pipeline.DeadLetterSpec, d docData, cause error) error {
	spec.Topic, spec.Reason, spec.Err, spec.Stage = pipeline.TopicDeadLetter, schemas.ReasonOversize, cause.Error(), p.stage
	spec.OriginTopic, spec.OriginOffset, spec.WriterData = d.origin, d.pos, schemas.ReasonOversize
	return pipeline.WriteSplitting(ctx, []pipeline.Message{spec.Message()}, p.writeSync, p.tooLarge)
}

// batchTooLarge deals with Arrow batch m, of d, that the broker refused
// alone for its size: a batch of several rows is written again as its two
// halves; a single row becomes a dead letter with reason oversize, its value
// the batch (see pipeline.DeadLetterSpec), its extra columns kept.
func (p *producer) batchTooLarge(ctx context.Context, m pipeline.Message, d docData, err error) error {
	tooBig := fmt.Errorf("a batch of %d bytes is too large for topic %s: %w", len(m.Value), m.Topic, err)
	if d.rows > 1 {
		halves, herr := splitBatch(m, d)
		if herr == nil {
			p.log.Debug("batch too large for its topic; writing it in halves", "rows", d.rows, "bytes", len(m.Value))
			return pipeline.WriteSplitting(ctx, halves, p.writeSync, p.tooLarge)
		}
		tooBig = fmt.Errorf("%w (and it could not be split: %v)", tooBig, herr)
	}
	p.log.Warn("document too large for its topic; dead-lettered as oversize", "bytes", len(m.Value), "topic", m.Topic, "rows", d.rows)
	cause := &schemas.DecodeError{Reason: schemas.ReasonOversize, Err: tooBig}
	// The rows of the batch are counted as one dead letter when it is
	// acknowledged; more than one row here only when the split failed.
	return p.deadOversize(ctx, pipeline.DeadLetterSpec{Partition: m.Partition, Value: m.Value, ContentType: schemas.ContentTypeArrow}, d, cause)
}

// splitBatch returns Arrow batch m, of d (two rows or more), as two
// messages: the first half of its rows and the rest.
func splitBatch(m pipeline.Message, d docData) ([]pipeline.Message, error) {
	recs, err := schemas.DecodeRecords(m.Value, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if len(recs) != 1 || int(recs[0].NumRows()) != d.rows || len(d.rowPos) != d.rows {
		return nil, fmt.Errorf("batch of %d records, want one of %d rows", len(recs), d.rows)
	}
	rec, h := recs[0], d.rows/2
	docs, err := schemas.Documents(rec)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Message, 0, 2)
	for _, r := range [][2]int{{0, h}, {h, d.rows}} {
		part := rec.NewSlice(int64(r[0]), int64(r[1]))
		payload, err := schemas.EncodeRecord(part)
		part.Release()
		if err != nil {
			return nil, err
		}
		text := 0
		for i := r[0]; i < r[1]; i++ {
			text += len(docs.Text(i))
		}
		pos := d.rowPos[r[0]:r[1]]
		msg := m
		msg.Value = payload
		msg.WriterData = docData{textBytes: text, origin: d.origin, pos: pos[0], rows: len(pos), rowPos: pos}
		out = append(out, msg)
	}
	return out, nil
}

// counts are a producer's totals.
type counts struct {
	docs, bytes, dead, failed int64
	err                       error // first delivery error
}

// counts returns the totals so far.
func (p *producer) counts() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return counts{docs: p.docs, bytes: p.bytes, dead: p.dead, failed: p.failed, err: p.firstErr}
}

// close flushes the queue and waits until every message is acknowledged,
// dead-lettered in its place, or failed; then it closes the Producer.
func (p *producer) close() error {
	p.flush()
	for {
		p.mu.Lock()
		for p.calls > 0 && len(p.refused) == 0 {
			p.cond.Wait()
		}
		done := p.calls == 0 && len(p.refused) == 0
		p.mu.Unlock()
		if done {
			break
		}
		p.writeRefused()
	}
	return p.p.Close()
}

// ---------------------------------------------------------------------------
// pacer: Config.Rate

// pacer spaces documents to a rate; the zero rate lets everything through.
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(docsPerSec float64) *pacer {
	if docsPerSec <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / docsPerSec)}
}

// wait blocks until the next document may go, calling flush first so that
// nothing waits in the queue while the pacer sleeps. It reports false when
// ctx ended.
func (pc *pacer) wait(ctx context.Context, flush func()) bool {
	if pc.every <= 0 {
		return true
	}
	now := time.Now()
	if pc.next.IsZero() {
		pc.next = now
	}
	// Sleeps shorter than a millisecond are not worth a timer (nor a flush);
	// the deficit is made up at the next longer sleep.
	if d := pc.next.Sub(now); d > time.Millisecond {
		flush()
		if !pipeline.Sleep(ctx, d) {
			return false
		}
	} else if pc.next.Before(now.Add(-time.Second)) {
		pc.next = now.Add(-time.Second) // allow at most one second of catch-up
	}
	pc.next = pc.next.Add(pc.every)
	return true
}
