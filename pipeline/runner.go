package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// WriteChunkMessages caps the messages of one Sink.Write call made by a
// Runner. KafkaSink puts up to this many messages of one partition in one
// produce batch, so a call's messages for a partition are appended
// atomically.
const WriteChunkMessages = 8192

// RunnerConfig configures a Runner. Name, Stage, Source and Sink are
// required; every other field has a default.
type RunnerConfig struct {
	// Name of the stage in logs, metrics and dead-letter headers.
	Name   string
	Stage  Stage
	Source Source
	Sink   Sink
	// OutputTopic receives outputs whose Output.Topic is empty. It may be
	// empty for a stage that names the topic of every output (e.g. one topic
	// per domain); an output without a topic is then an error that stops the
	// runner.
	OutputTopic string
	// DeadLetterTopic receives what cannot be processed. Default: docs.deadletter.
	DeadLetterTopic string
	// TrustOrigins keeps the origin columns of Document records read from
	// Arrow messages. By default the runner stamps them with the position it
	// read them from (topic, partition, offset, row within the message), as
	// it does for JSON documents: origins are what duplicate filters and
	// exactly-once consumers key on, so an ingress stage never believes
	// them. Records of other kinds (Features, Routed) were written by a stage
	// of ours and always keep their origins. Default: false.
	TrustOrigins bool
	// OneToOne declares that the stage turns every input row into exactly
	// one output row, one dead row or one dropped duplicate (Result.Dropped).
	// The runner then checks it on every batch: a stage that breaks it is
	// logged and counted (Counts.Unaccounted, domainflow_unaccounted_rows_total),
	// and Run returns an error at the end. Default: false.
	OneToOne bool
	// Accept lists the record kinds the stage takes; a JSON document
	// message is of kind document. Default: [document].
	Accept []schemas.Kind
	// Limits validate JSON documents. Default: schemas defaults.
	Limits schemas.Limits
	// BatchMaxRecords caps the messages of one micro-batch. Default: 2000.
	BatchMaxRecords int
	// BatchMaxBytes caps the payload bytes of one micro-batch. Default: 8 MiB.
	BatchMaxBytes int
	// Linger is how long a micro-batch waits to fill after its first
	// message. Default: 20ms.
	Linger time.Duration
	// OutMaxRows and OutMaxBytes cap the rows and approximate bytes of one
	// output message (an Arrow IPC batch). Defaults: 4096 rows, 1 MiB. A row
	// larger than OutMaxBytes travels alone.
	OutMaxRows, OutMaxBytes int
	// WriteChunkBytes caps the bytes of one produce call; each call puts a
	// partition's messages in one produce batch, so partition order holds
	// even when a call fails and is retried. Default: 8 MiB.
	WriteChunkBytes int
	// FetchTimeout, WriteTimeout and CommitTimeout bound each call.
	// Defaults: 2s, 30s, 10s.
	FetchTimeout, WriteTimeout, CommitTimeout time.Duration
	// BackoffMin and BackoffMax bound the retry backoff while the broker is
	// away. Defaults: 100ms, 5s.
	BackoffMin, BackoffMax time.Duration
	// DrainTimeout bounds the graceful stop: once Run's context ends, the
	// batch in hand is written and committed within this time or abandoned
	// (it is redelivered later). Default: 30s.
	DrainTimeout time.Duration
	// CommitAttempts before a commit failure is logged and skipped (the next
	// commit covers it; on a crash the input is redelivered). Default: 5.
	CommitAttempts int
	// States keeps the per-partition snapshots of a PartitionStage, so that
	// a partition moves between the processes of a consumer group with its
	// state (see PartitionStage). Nil keeps no snapshots: each process then
	// starts every partition from the stage's initial state. Ignored for
	// other stages.
	States StateStore
	// Metrics, when non-nil, receive the runner's counters.
	Metrics *Metrics
	// LagInterval is how often a runner with Metrics asks a Source that is
	// a LagReporter for its lag (domainflow_consumer_lag). Default: 5s.
	LagInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Mem allocates Arrow buffers. Default: memory.DefaultAllocator.
	Mem memory.Allocator
}

func (c *RunnerConfig) setDefaults() {
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = TopicDeadLetter
	}
	if len(c.Accept) == 0 {
		c.Accept = []schemas.Kind{schemas.KindDocument}
	}
	c.BatchMaxRecords = orInt(c.BatchMaxRecords, 2000)
	c.BatchMaxBytes = orInt(c.BatchMaxBytes, 8<<20)
	c.Linger = orDur(c.Linger, 20*time.Millisecond)
	c.OutMaxRows = orInt(c.OutMaxRows, 4096)
	c.OutMaxBytes = orInt(c.OutMaxBytes, 1<<20)
	c.WriteChunkBytes = orInt(c.WriteChunkBytes, 8<<20)
	c.FetchTimeout = orDur(c.FetchTimeout, 2*time.Second)
	c.WriteTimeout = orDur(c.WriteTimeout, 30*time.Second)
	c.CommitTimeout = orDur(c.CommitTimeout, 10*time.Second)
	c.BackoffMin = orDur(c.BackoffMin, 100*time.Millisecond)
	c.BackoffMax = orDur(c.BackoffMax, 5*time.Second)
	c.DrainTimeout = orDur(c.DrainTimeout, 30*time.Second)
	c.CommitAttempts = orInt(c.CommitAttempts, 5)
	c.LagInterval = orDur(c.LagInterval, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Mem == nil {
		c.Mem = memory.DefaultAllocator
	}
}

func (c *RunnerConfig) validate() error {
	switch {
	case c.Name == "":
		return errors.New("runner: a stage name is required")
	case c.Stage == nil:
		return errors.New("runner: a stage is required")
	case c.Source == nil:
		return errors.New("runner: a source is required")
	case c.Sink == nil:
		return errors.New("runner: a sink is required")
	case c.BackoffMin > c.BackoffMax:
		return errors.New("runner: BackoffMin exceeds BackoffMax")
	}
	return nil
}

// Counts are a runner's totals since it started. For a one-to-one stage
// (RunnerConfig.OneToOne) In = Out + Dead + Dropped holds after every batch;
// Unaccounted counts the rows by which a stage broke it (always 0 for a
// correct stage).
type Counts struct {
	In          int64 // input rows, plus input messages that could not be decoded
	Out         int64 // rows written to output topics
	Dead        int64 // rows or messages written to the dead-letter topic
	Dropped     int64 // rows the stage dropped as duplicates of rows already handled
	Unaccounted int64 // rows a one-to-one stage neither output, dead-lettered nor dropped
	Batches     int64 // micro-batches committed
	// Busy is the time during which at least one micro-batch was in hand,
	// from the start of its processing to its commit (batches overlap: the
	// next one is processed while one is written). Time spent waiting for
	// input is not in it, so In/Busy is the rate at which the stage works,
	// In over the whole run the rate at which input came.
	Busy time.Duration
}

// PerSecond returns n per second over d (0 for no time): the rate of the
// stop summaries and progress lines.
func PerSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// busyClock measures the union of the intervals during which at least one
// batch is in hand.
type busyClock struct {
	mu     sync.Mutex
	active int       // batches in hand
	since  time.Time // when active went from 0 to 1
	total  time.Duration
}

// begin marks a batch taken in hand at now.
func (b *busyClock) begin(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active == 0 {
		b.since = now
	}
	b.active++
}

// end marks a batch done at now.
func (b *busyClock) end(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active == 0 {
		b.total += now.Sub(b.since)
	}
}

// busy returns the busy time up to now.
func (b *busyClock) busy(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active > 0 {
		return b.total + now.Sub(b.since)
	}
	return b.total
}

// Runner runs one Stage between a Source and a Sink. See the package doc for
// the delivery contract. A Runner is used once: call Run, then read Counts.
type Runner struct {
	cfg    RunnerConfig
	log    *slog.Logger
	accept map[schemas.Kind]bool

	in, out, dead, dropped, unaccounted, batches atomic.Int64
	clock                                        busyClock

	// With a PartitionStage: the offset after the last message processed of
	// each partition (owned by the preparing goroutine), the source's group
	// generation seen last, and the sequence numbers of prepared and
	// finished batches (see resume).
	pstage PartitionStage
	next   map[Partition]int64
	skip   map[Partition]int64 // drop messages below (see resume)
	// done is next as this process left it, kept across group generations:
	// the offset up to which the stage's in-memory state of the partition
	// reflects messages this process handled (see restore).
	done               map[Partition]int64
	gen, seenGen       atomic.Int64
	prepared, finished atomic.Int64
}

// NewRunner checks cfg and returns a runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Runner{cfg: cfg, log: cfg.Logger.With("stage", cfg.Name), accept: map[schemas.Kind]bool{},
		next: map[Partition]int64{}, skip: map[Partition]int64{}, done: map[Partition]int64{}}
	r.pstage, _ = cfg.Stage.(PartitionStage)
	for _, k := range cfg.Accept {
		r.accept[k] = true
	}
	return r, nil
}

// Counts returns the totals so far; safe to call while Run runs.
func (r *Runner) Counts() Counts {
	return Counts{In: r.in.Load(), Out: r.out.Load(), Dead: r.dead.Load(), Dropped: r.dropped.Load(),
		Unaccounted: r.unaccounted.Load(), Batches: r.batches.Load(), Busy: r.clock.busy(time.Now())}
}

// Run processes micro-batches until ctx ends or a finite Source is
// exhausted. When ctx ends it stops fetching, writes and commits the batch in
// hand (bounded by DrainTimeout) and returns nil. It returns an error only
// when a batch could not be written before the drain deadline; that batch is
// not committed and will be redelivered.
func (r *Runner) Run(ctx context.Context) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	msgs := make(chan kafka.Message, r.cfg.BatchMaxRecords)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owner: Run; ends when fetchCtx ends or the source is exhausted
		defer wg.Done()
		defer close(msgs)
		r.fetchLoop(fetchCtx, msgs)
	}()
	defer wg.Wait()

	// work ends DrainTimeout after ctx: writes and commits of the batch in
	// hand may finish after a stop signal, but not forever.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.cfg.DrainTimeout, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	// Processing and writing overlap: while batch N is written and
	// committed, batch N+1 is decoded and processed. Batches are written and
	// committed strictly in order by one goroutine.
	prepared := make(chan *preparedBatch, 1)
	werr := make(chan error, 1)
	go func() { // owner: Run; ends when prepared is closed or a write fails
		var err error
		for pb := range prepared {
			if err == nil {
				if err = r.finish(work, pb); err != nil {
					stopFetch()
				}
			}
			r.clock.end(time.Now())
			r.finished.Add(1)
		}
		werr <- err
	}()

	if lr, ok := r.cfg.Source.(LagReporter); ok && r.cfg.Metrics != nil {
		lagCtx, stopLag := context.WithCancel(ctx)
		wg.Add(1)
		go func() { // owner: Run; ends when Run returns
			defer wg.Done()
			r.reportLag(lagCtx, lr)
		}()
		defer stopLag()
	}

	r.log.Info("stage running", "output", r.cfg.OutputTopic)
	start := time.Now()
	var err error
	for {
		batch, more := r.collect(ctx, msgs)
		if len(batch) > 0 {
			var pb *preparedBatch
			r.clock.begin(time.Now())
			if pb, err = r.prepare(work, batch); err != nil {
				r.clock.end(time.Now())
				stopFetch()
				break
			}
			r.prepared.Add(1)
			prepared <- pb
		}
		if !more {
			break
		}
	}
	close(prepared)
	if werrV := <-werr; err == nil {
		err = werrV
	}
	if err != nil {
		return err
	}
	c, elapsed := r.Counts(), time.Since(start)
	r.log.Info("stage stopped", "in", c.In, "out", c.Out, "dead", c.Dead, "duplicates", c.Dropped, "batches", c.Batches,
		"seconds", roundSeconds(elapsed), "busy_seconds", roundSeconds(c.Busy),
		"rows_per_s_busy", math.Round(PerSecond(c.In, c.Busy)), "rows_per_s_overall", math.Round(PerSecond(c.In, elapsed)))
	if c.Unaccounted != 0 {
		return fmt.Errorf("stage %s: %d input rows were neither output, dead-lettered nor dropped as duplicates", r.cfg.Name, c.Unaccounted)
	}
	return nil
}

// fetchLoop feeds msgs until ctx ends or the source is exhausted; it retries
// with backoff while the broker is away.
func (r *Runner) fetchLoop(ctx context.Context, msgs chan<- kafka.Message) {
	backoff := r.cfg.BackoffMin
	for ctx.Err() == nil {
		// One deadline serves many fetches: Fetch returns at once while
		// messages are queued, and a context per message costs a timer.
		fctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		done := r.fetchUntil(ctx, fctx, msgs, &backoff)
		cancel()
		if done {
			return
		}
	}
}

// fetchUntil fetches until fctx's deadline passes (false) or ctx ends or the
// source is exhausted (true).
func (r *Runner) fetchUntil(ctx, fctx context.Context, msgs chan<- kafka.Message, backoff *time.Duration) bool {
	for {
		m, err := r.cfg.Source.Fetch(fctx)
		switch {
		case err == nil:
			*backoff = r.cfg.BackoffMin
			if g, ok := r.cfg.Source.(generationer); ok {
				// Before m is handed on: a message of a new generation
				// is seen only after the generation change.
				r.gen.Store(g.Generation())
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return true
			}
		case ctx.Err() != nil:
			return true
		case fctx.Err() != nil:
			// Idle until the deadline, or the deadline passed mid-stream.
			return false
		case errors.Is(err, io.EOF):
			return true
		default:
			r.log.Warn("fetch failed; retrying", "err", err, "backoff", *backoff)
			if !Sleep(ctx, *backoff) {
				return true
			}
			*backoff = min(2**backoff, r.cfg.BackoffMax)
		}
	}
}

// collect returns the next micro-batch; more is false once the runner should
// stop after this batch.
func (r *Runner) collect(ctx context.Context, msgs <-chan kafka.Message) (batch []kafka.Message, more bool) {
	select {
	case m, ok := <-msgs:
		if !ok {
			return nil, false
		}
		batch = append(batch, m)
	case <-ctx.Done():
		return nil, false
	}
	bytes := len(batch[0].Value)
	linger := time.NewTimer(r.cfg.Linger)
	defer linger.Stop()
	for len(batch) < r.cfg.BatchMaxRecords && bytes < r.cfg.BatchMaxBytes {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch, false
			}
			batch = append(batch, m)
			bytes += len(m.Value)
		case <-linger.C:
			return batch, true
		case <-ctx.Done():
			return batch, false
		}
	}
	return batch, true
}

// partitionBatch is the part of a micro-batch from one input partition.
type partitionBatch struct {
	topic     string
	partition int
	msgs      []kafka.Message
}

func groupByPartition(batch []kafka.Message) []*partitionBatch {
	var groups []*partitionBatch
	index := map[string]*partitionBatch{}
	for _, m := range batch {
		key := m.Topic + "\x00" + strconv.Itoa(m.Partition)
		g := index[key]
		if g == nil {
			g = &partitionBatch{topic: m.Topic, partition: m.Partition}
			index[key] = g
			groups = append(groups, g)
		}
		g.msgs = append(g.msgs, m)
	}
	return groups
}

// preparedBatch is a processed micro-batch waiting to be written.
type preparedBatch struct {
	start  time.Time
	gen    int64 // the source's group generation the batch was fetched in (0: no generations)
	out    []kafka.Message
	lasts  []kafka.Message // the last input message of each partition
	states []partitionSnapshot
	stats  batchStats
}

// partitionSnapshot is a PartitionStage's state of one partition after a
// prepared batch, saved after the batch's outputs are acknowledged.
type partitionSnapshot struct {
	p     Partition
	at    int64
	state []byte
}

// prepare decodes and processes one micro-batch.
func (r *Runner) prepare(ctx context.Context, batch []kafka.Message) (*preparedBatch, error) {
	pb := &preparedBatch{start: time.Now(), gen: r.gen.Load()}
	groups := groupByPartition(batch)
	if r.pstage != nil {
		r.checkGeneration()
	}
	for _, g := range groups {
		msgs := g.msgs
		if r.pstage != nil {
			var err error
			if msgs, err = r.resume(ctx, g, &pb.stats); err != nil {
				return nil, err
			}
		}
		if len(msgs) > 0 && r.pstage != nil {
			if err := r.applyPending(ctx, Partition{Topic: g.topic, Partition: g.partition}, msgs[0].Offset); err != nil {
				return nil, err
			}
		}
		if len(msgs) > 0 {
			var err error
			pb.out, err = r.processPartition(ctx, &partitionBatch{topic: g.topic, partition: g.partition, msgs: msgs}, pb.out, &pb.stats)
			if err != nil {
				return nil, err
			}
			if r.pstage != nil {
				p := Partition{Topic: g.topic, Partition: g.partition}
				next := msgs[len(msgs)-1].Offset + 1
				state, err := r.pstage.Snapshot(p, next)
				if err != nil {
					return nil, fmt.Errorf("stage %s: snapshot of %s: %w", r.cfg.Name, p, err)
				}
				pb.states = append(pb.states, partitionSnapshot{p: p, at: next, state: state})
			}
		}
		pb.lasts = append(pb.lasts, g.msgs[len(g.msgs)-1])
	}
	return pb, nil
}

// finish writes a prepared batch, commits its input and counts it.
func (r *Runner) finish(ctx context.Context, pb *preparedBatch) error {
	if err := r.write(ctx, pb.out, &pb.stats); err != nil {
		return err
	}
	switch err := r.saveStates(ctx, pb.gen, pb.states); {
	case errors.Is(err, errStaleGeneration):
		// Another member owns the partitions now: its snapshots are newer
		// than this batch's, and the input is not committed (the
		// commit would fail too). The outputs were written: the new owner
		// redelivers the input, and downstream drops the repeats.
		r.log.Warn("the group moved on while this batch's state was being saved: state not saved, input not committed", "err", err)
	case err != nil:
		return err
	default:
		r.commit(ctx, pb.lasts)
	}

	st := &pb.stats
	r.in.Add(st.in)
	r.out.Add(st.out)
	r.dead.Add(st.dead)
	r.dropped.Add(st.dropped)
	r.unaccounted.Add(st.unaccounted)
	r.batches.Add(1)
	if m := r.cfg.Metrics; m != nil {
		m.RecordsIn.WithLabelValues(r.cfg.Name).Add(float64(st.in))
		for topic, n := range st.outByTopic {
			m.RecordsOut.WithLabelValues(r.cfg.Name, topic).Add(float64(n))
		}
		for reason, n := range st.deadByReason {
			m.DeadLetters.WithLabelValues(r.cfg.Name, string(reason)).Add(float64(n))
		}
		if st.dropped > 0 {
			m.Duplicates.WithLabelValues(r.cfg.Name).Add(float64(st.dropped))
		}
		if st.unaccounted != 0 {
			m.Unaccounted.WithLabelValues(r.cfg.Name).Add(float64(st.unaccounted))
		}
		m.Bytes.WithLabelValues(r.cfg.Name, "in").Add(float64(st.bytesIn))
		m.Bytes.WithLabelValues(r.cfg.Name, "out").Add(float64(st.bytesOut))
		m.BatchSeconds.WithLabelValues(r.cfg.Name).Observe(time.Since(pb.start).Seconds())
	}
	return nil
}

type batchStats struct {
	in, out, dead     int64
	dropped           int64 // rows the stage dropped as duplicates
	unaccounted       int64 // rows a one-to-one stage lost track of (a bug)
	bytesIn, bytesOut int64
	outByTopic        map[string]int64
	deadByReason      map[schemas.Reason]int64
}

func (s *batchStats) addOut(topic string, n int64) {
	if s.outByTopic == nil {
		s.outByTopic = map[string]int64{}
	}
	s.out += n
	s.outByTopic[topic] += n
}

func (s *batchStats) addDead(reason schemas.Reason) {
	if s.deadByReason == nil {
		s.deadByReason = map[schemas.Reason]int64{}
	}
	s.dead++
	s.deadByReason[reason]++
}

// processPartition decodes one partition's messages into records, runs the
// stage on each and appends the resulting messages (outputs and dead
// letters) to out.
func (r *Runner) processPartition(ctx context.Context, g *partitionBatch, out []kafka.Message, st *batchStats) ([]kafka.Message, error) {
	var (
		recs      []arrow.Record
		positions []Position // of each record
		pending   Position   // of the JSON documents in b
	)
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	b := schemas.NewDocumentBuilder(r.cfg.Mem)
	defer b.Release()
	var carry kafkaCarry // the keys and producer headers of b's documents
	flush := func() {
		if b.Len() > 0 {
			recs = append(recs, carry.apply(b.NewRecord(), r.cfg.Mem))
			positions = append(positions, pending)
		}
		carry.reset()
	}
	for _, m := range g.msgs {
		st.bytesIn += int64(len(m.Value))
		d, err := DecodeMessage(m, r.cfg.Limits, r.cfg.Mem)
		if err != nil {
			st.in++
			out = r.deadMessage(out, m, err, st)
			continue
		}
		switch d.ContentType {
		case schemas.ContentTypeJSON:
			doc := d.Doc
			if !r.accept[schemas.KindDocument] {
				st.in++
				out = r.deadMessage(out, m, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("stage %s takes %v, not JSON documents", r.cfg.Name, r.cfg.Accept)}, st)
				continue
			}
			if doc.ID == "" {
				doc.ID = fmt.Sprintf("%s-%d-%d", m.Topic, m.Partition, m.Offset)
			}
			if b.Len() == 0 {
				pending = Position{Partition: Partition{Topic: m.Topic, Partition: m.Partition}, First: m.Offset}
			}
			pending.Last = m.Offset
			b.Append(doc, schemas.Origin{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset})
			carry.add(m, doc.ID)
			if b.Len() >= r.cfg.OutMaxRows*4 {
				flush()
			}
		case schemas.ContentTypeArrow:
			flush()
			decoded := d.Records
			for _, rec := range decoded {
				if k, _, _ := schemas.KindOf(rec.Schema()); !r.accept[k] {
					err = &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: fmt.Errorf("stage %s takes %v, not %q records", r.cfg.Name, r.cfg.Accept, k)}
				}
			}
			if err != nil {
				d.Release()
			}
			if err == nil && !r.cfg.TrustOrigins {
				decoded, err = r.stampOrigins(decoded, m)
			}
			if err != nil {
				st.in++
				out = r.deadMessage(out, m, err, st)
				continue
			}
			for i, rec := range decoded {
				decoded[i] = carryMessage(rec, m, r.cfg.Mem)
			}
			recs = append(recs, decoded...)
			for range decoded {
				positions = append(positions, Position{Partition: Partition{Topic: m.Topic, Partition: m.Partition}, First: m.Offset, Last: m.Offset})
			}
		}
	}
	flush()

	for i, rec := range recs {
		st.in += rec.NumRows()
		res, err := r.process(ctx, positions[i], rec)
		if err != nil {
			if ctx.Err() != nil {
				return out, fmt.Errorf("stage %s: %w", r.cfg.Name, err)
			}
			// A permanent stage failure: every row of the batch is dead.
			res = Result{}
			for i := range int(rec.NumRows()) {
				res.Dead = append(res.Dead, DeadRow{Row: i, Reason: schemas.ReasonProcessing, Err: err})
			}
		}
		if r.cfg.OneToOne {
			r.checkAccounting(rec, res, st)
		}
		st.dropped += int64(len(res.Dropped))
		for _, o := range res.Out {
			topic := o.Topic
			if topic == "" {
				topic = r.cfg.OutputTopic
			}
			if topic == "" {
				o.Record.Release()
				return out, fmt.Errorf("stage %s returned an output without a topic, and the runner has no OutputTopic", r.cfg.Name)
			}
			part := g.partition
			if o.PartitionSet {
				part = o.Partition
			}
			var encErr error
			out, encErr = r.encode(out, topic, part, o.Record, st)
			o.Record.Release()
			if encErr != nil {
				return out, fmt.Errorf("stage %s: encode output: %w", r.cfg.Name, encErr)
			}
		}
		if len(res.Dead) > 0 {
			out = r.deadRows(out, g.partition, rec, res.Dead, st)
		}
	}
	return out, nil
}

// checkAccounting checks, for a one-to-one stage, that every input row of rec
// ended as exactly one output row, dead letter or dropped duplicate. A
// mismatch is a bug of the stage: it is logged and counted, never hidden.
func (r *Runner) checkAccounting(rec arrow.Record, res Result, st *batchStats) {
	var out int64
	for _, o := range res.Out {
		out += o.Record.NumRows()
	}
	got := out + int64(len(res.Dead)) + int64(len(res.Dropped))
	if got == rec.NumRows() {
		return
	}
	st.unaccounted += rec.NumRows() - got
	r.log.Error("stage broke the accounting identity: input rows != output rows + dead letters + dropped duplicates",
		"in", rec.NumRows(), "out", out, "dead", len(res.Dead), "dropped", len(res.Dropped))
}

// stampOrigins replaces the origins of the Document records of message m
// with m's own position (see schemas.StampOrigins); records of other kinds
// were written by a stage of ours and keep theirs. On error every record is
// released.
func (r *Runner) stampOrigins(recs []arrow.Record, m kafka.Message) ([]arrow.Record, error) {
	var row int32
	for i, rec := range recs {
		if k, _, _ := schemas.KindOf(rec.Schema()); k != schemas.KindDocument {
			continue
		}
		stamped, err := schemas.StampOrigins(rec, m.Topic, int32(m.Partition), m.Offset, row, r.cfg.Mem)
		if err != nil {
			for _, rec := range recs {
				rec.Release()
			}
			return nil, &schemas.DecodeError{Reason: schemas.ReasonMalformedArrow, Err: fmt.Errorf("stamp origins: %w", err)}
		}
		row += int32(rec.NumRows())
		rec.Release()
		recs[i] = stamped
	}
	return recs, nil
}

// process calls the stage, retrying transient errors and turning panics into
// errors.
func (r *Runner) process(ctx context.Context, pos Position, rec arrow.Record) (Result, error) {
	backoff := r.cfg.BackoffMin
	for {
		res, err := r.safeProcess(ctx, pos, rec)
		if err == nil || !errors.Is(err, ErrRetry) {
			return res, err
		}
		r.log.Warn("stage asked for a retry", "err", err, "backoff", backoff)
		if !Sleep(ctx, backoff) {
			return Result{}, err
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}

func (r *Runner) safeProcess(ctx context.Context, pos Position, rec arrow.Record) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("stage panicked", "panic", p, "stack", string(debug.Stack()))
			for _, o := range res.Out {
				o.Record.Release()
			}
			res, err = Result{}, fmt.Errorf("stage panicked: %v", p)
		}
	}()
	if r.pstage != nil {
		return r.pstage.ProcessAt(ctx, pos, rec)
	}
	return r.cfg.Stage.Process(ctx, rec)
}

// encode cuts rec into Arrow IPC messages of at most OutMaxRows rows and
// about OutMaxBytes bytes, addressed to topic/partition.
func (r *Runner) encode(out []kafka.Message, topic string, partition int, rec arrow.Record, st *batchStats) ([]kafka.Message, error) {
	n := int(rec.NumRows())
	if n == 0 {
		return out, nil
	}
	sizes := rowSizes(rec)
	for lo := 0; lo < n; {
		hi, bytes := lo, 0
		for hi < n && hi-lo < r.cfg.OutMaxRows && (hi == lo || bytes+sizes[hi] <= r.cfg.OutMaxBytes) {
			bytes += sizes[hi]
			hi++
		}
		part := rec
		if lo != 0 || hi != n {
			part = rec.NewSlice(int64(lo), int64(hi))
		}
		payload, err := schemas.EncodeRecord(part)
		if part != rec {
			part.Release()
		}
		if err != nil {
			return out, err
		}
		out = append(out, kafka.Message{
			Topic:     topic,
			Partition: partition,
			Value:     payload,
			Headers:   arrowHeaders,
		})
		st.addOut(topic, int64(hi-lo))
		st.bytesOut += int64(len(payload))
		lo = hi
	}
	return out, nil
}

var arrowHeaders = []kafka.Header{
	{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeArrow)},
	{Key: schemas.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.Version))},
}

// rowSizes estimates the encoded bytes of each row of rec.
func rowSizes(rec arrow.Record) []int {
	n := int(rec.NumRows())
	sizes := make([]int, n)
	for _, col := range rec.Columns() {
		switch a := col.(type) {
		case *array.String:
			for i := range n {
				sizes[i] += a.ValueLen(i) + 4
			}
		case *array.Binary:
			for i := range n {
				sizes[i] += a.ValueLen(i) + 4
			}
		case *array.List:
			off := a.Offsets()
			w := 4
			if fw, ok := a.ListValues().DataType().(arrow.FixedWidthDataType); ok {
				w = max(fw.BitWidth()/8, 1)
			}
			for i := range n {
				sizes[i] += int(off[i+1]-off[i])*w + 4
			}
		default:
			w := 8
			if fw, ok := col.DataType().(arrow.FixedWidthDataType); ok {
				w = max(fw.BitWidth()/8, 1)
			}
			for i := range n {
				sizes[i] += w
			}
		}
	}
	return sizes
}

// write produces msgs in chunks of at most WriteChunkBytes, each retried
// with backoff until it is acknowledged or ctx ends. A chunk is written only
// after the one before it, so a partition's messages keep their order even
// across retries (a retry may only repeat a suffix, in order). A message too
// large for its topic does not fail its chunk: see tooLarge; st follows what
// it dead-letters.
func (r *Runner) write(ctx context.Context, msgs []kafka.Message, st *batchStats) error {
	for lo := 0; lo < len(msgs); {
		hi, bytes := lo, 0
		for hi < len(msgs) && hi-lo < WriteChunkMessages && (hi == lo || bytes+len(msgs[hi].Value) <= r.cfg.WriteChunkBytes) {
			bytes += len(msgs[hi].Value)
			hi++
		}
		if err := r.writeChunk(ctx, msgs[lo:hi], st); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// writeChunk writes msgs; a size refusal splits them (WriteSplitting).
func (r *Runner) writeChunk(ctx context.Context, msgs []kafka.Message, st *batchStats) error {
	return WriteSplitting(ctx, msgs, r.writeRetrying, func(ctx context.Context, m kafka.Message, err error) error {
		return r.tooLarge(ctx, m, err, st)
	})
}

// writeRetrying writes msgs, retrying with backoff every error but a size
// refusal, which it returns.
func (r *Runner) writeRetrying(ctx context.Context, msgs ...kafka.Message) error {
	backoff := r.cfg.BackoffMin
	for {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
		// kafka-go's Writer may set fields of the messages it is given.
		err := r.cfg.Sink.Write(wctx, slices.Clone(msgs)...)
		cancel()
		if err == nil || IsTooLarge(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stage %s: write %d messages: %w (gave up: %v)", r.cfg.Name, len(msgs), err, context.Cause(ctx))
		}
		if r.cfg.Metrics != nil {
			r.cfg.Metrics.WriteRetries.WithLabelValues(r.cfg.Name).Inc()
		}
		r.log.Warn("write failed; retrying", "err", err, "messages", len(msgs), "backoff", backoff)
		if !Sleep(ctx, backoff) {
			return fmt.Errorf("stage %s: write %d messages: %w", r.cfg.Name, len(msgs), err)
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}

// commit commits the last message of each partition, retrying a few times.
// A commit that still fails is logged: the next commit covers it, and after a
// crash the input is redelivered (at-least-once).
func (r *Runner) commit(ctx context.Context, lasts []kafka.Message) {
	backoff := r.cfg.BackoffMin
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CommitTimeout)
		err := r.cfg.Source.Commit(cctx, lasts...)
		cancel()
		if err == nil {
			return
		}
		if attempt >= r.cfg.CommitAttempts || ctx.Err() != nil || !Sleep(ctx, backoff) {
			if r.cfg.Metrics != nil {
				r.cfg.Metrics.CommitFailure.WithLabelValues(r.cfg.Name).Inc()
			}
			r.log.Warn("commit failed; input will be redelivered if this process stops", "err", err, "attempts", attempt)
			return
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}

// roundSeconds is d in seconds, to the millisecond.
func roundSeconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }
