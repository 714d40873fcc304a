package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// archiveFlags are the flags of `pipeline archive`.
type archiveFlags struct {
	kafka      kafkaFlags
	domains    string
	out        string
	shardMsgs  int
	exitOnIdle time.Duration
	json       bool
}

// archiveReport is one domain's line of the archive report.
type archiveReport struct {
	Domain int   `json:"domain"`
	Docs   int64 `json:"docs"`
	Shards int   `json:"shards"`
}

func (a *app) archiveCmd() *cobra.Command {
	var f archiveFlags
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Archive sink: per-domain Parquet shards of routed documents",
		Long: `Copy the routed documents of docs.domain.<id> topics into rolling Parquet
shards for trainers outside this project:

  --out/archive/<id>/part-PPP-FFFFFFFFFFFF-LLLLLLLLLLLL.parquet

holds the documents of input partition PPP from offset F to offset L (columns
id, text, meta: the same rows 'pipeline replay' and every --in read). A shard
closes after --shard-messages messages, and when the sink stops (idle or
SIGINT/SIGTERM). Shards are written atomically, and a restarted sink continues
after the last offset its shards hold, so names are deterministic and nothing
is archived twice or skipped.

--domain all takes the domain ids from the routers on router.models; a
docs.domain.* topic whose id is no router's (docs.domain.007, docs.domain.-1)
is ignored with a warning.`,
		Example: `  pipeline archive --brokers 127.0.0.1:9092 --domain all --out run/
  pipeline archive --brokers 127.0.0.1:9092 --domain 0,3 --out run/ --exit-on-idle 10s --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runArchive(cmd.Context(), &f) },
	}
	fs := cmd.Flags()
	f.kafka.register(fs)
	fs.StringVar(&f.domains, "domain", "all", "domain `ids` (comma-separated) or all: the domains of the routers on router.models that have a topic")
	fs.StringVar(&f.out, "out", "", "output `dir`: shards go to DIR/archive/<id>/")
	fs.IntVar(&f.shardMsgs, "shard-messages", 1000, "input messages per shard")
	fs.DurationVar(&f.exitOnIdle, "exit-on-idle", 0, "close the shards and exit once no input came for this long (0: until SIGINT/SIGTERM)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object")
	return cmd
}

func (a *app) runArchive(ctx context.Context, f *archiveFlags) error {
	if f.out == "" {
		return usagef("archive: --out is required")
	}
	if f.shardMsgs < 1 || f.exitOnIdle < 0 {
		return usagef("archive: --shard-messages must be at least 1 and --exit-on-idle not negative")
	}
	log := a.log.With("cmd", "archive")
	cc, err := f.kafka.connect(ctx, a.log)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	var ids []int
	if f.domains == "all" {
		rd := newRouterDomains(cc, log)
		defer rd.close()
		var ts []pipeline.TopicInfo
		err := pipeline.Retry(ctx, log, "read the router's domains", func(ctx context.Context) error {
			var err error
			if ts, err = pipeline.ListTopics(ctx, cc); err != nil {
				return err
			}
			return rd.refresh(ctx, ts)
		})
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if !rd.any() {
			return fmt.Errorf("archive: --domain all archives the domains of the router, and %s holds no router; give --domain ids", pipeline.TopicRouterModels)
		}
		if ids = rd.domains(ts); len(ids) == 0 {
			return fmt.Errorf("archive: no topic of a router domain (%s<id>) on %v", pipeline.DomainTopicPrefix, cc.Brokers)
		}
	} else {
		for _, s := range splitList(f.domains) {
			id, err := strconv.Atoi(s)
			if err != nil || id < 0 {
				return usagef("archive: --domain %q: want ids like 0,3 or all", s)
			}
			ids = append(ids, id)
		}
	}
	dead, err := pipeline.NewKafkaSink(pipeline.SinkConfig{Client: cc})
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer dead.Close()
	var (
		mu   sync.Mutex
		reps []archiveReport
		errs []error
		wg   sync.WaitGroup
	)
	for _, id := range ids {
		wg.Go(func() {
			r, err := archiveDomain(ctx, cc, dead, f, id, log.With("domain", id))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("domain %d: %w", id, err))
				return
			}
			reps = append(reps, r)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("archive: %w", errors.Join(errs...))
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].Domain < reps[j].Domain })
	if f.json {
		return writeJSON(a.stdout, struct {
			Domains []archiveReport `json:"domains"`
		}{reps})
	}
	for _, r := range reps {
		fmt.Fprintf(a.stderr, "archive: domain %d: %s in %d new shards\n", r.Domain, plural(r.Docs, "document"), r.Shards)
	}
	return nil
}

// shardName is the file of partition p's messages first..last.
func shardName(p int, first, last int64) string {
	return fmt.Sprintf("part-%03d-%012d-%012d.parquet", p, first, last)
}

// archivedUpTo returns per partition the next offset after the shards in
// dir.
func archivedUpTo(dir string) (map[int]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	next := map[int]int64{}
	for _, e := range ents {
		var p int
		var first, last int64
		if n, _ := fmt.Sscanf(e.Name(), "part-%03d-%012d-%012d.parquet", &p, &first, &last); n == 3 && e.Name() == shardName(p, first, last) {
			next[p] = max(next[p], last+1)
		}
	}
	return next, nil
}

// archiveDomain copies docs.domain.<id> into shards until idle or ctx ends.
func archiveDomain(ctx context.Context, cc pipeline.ClientConfig, dead *pipeline.KafkaSink, f *archiveFlags, id int, log *slog.Logger) (archiveReport, error) {
	rep := archiveReport{Domain: id}
	topic := pipeline.DomainTopic(id)
	dir := filepath.Join(f.out, "archive", strconv.Itoa(id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, err
	}
	next, err := archivedUpTo(dir)
	if err != nil {
		return rep, err
	}
	var n int
	err = pipeline.Retry(ctx, log, "read the partitions of "+topic, func(ctx context.Context) error {
		var err error
		n, err = pipeline.PartitionCount(ctx, cc, topic)
		return err
	})
	if err != nil {
		return rep, err
	}
	in, err := pipeline.NewRoundRobin(pipeline.ConsumerConfig{Client: cc, Topic: topic, Logger: log}, n)
	if err != nil {
		return rep, err
	}
	defer in.Close()
	for p, off := range next {
		if p < n {
			in.Seek(p, off)
		}
	}
	type shard struct {
		docs        []schemas.Document
		first, last int64
		msgs        int
	}
	open := make([]*shard, n)
	flush := func(p int) error {
		s := open[p]
		if s == nil || s.msgs == 0 {
			return nil
		}
		path := filepath.Join(dir, shardName(p, s.first, s.last))
		if err := schemas.WriteFileAtomic(path, func(fh *os.File) error { return schemas.WriteParquetDocuments(fh, s.docs) }); err != nil {
			return err
		}
		rep.Shards++
		open[p] = nil
		return nil
	}
	flushAll := func() error {
		for p := range open {
			if err := flush(p); err != nil {
				return err
			}
		}
		return nil
	}
	lastInput := time.Now()
	cursor := 0
	for ctx.Err() == nil {
		m, p, ok, err := in.NextRetrying(ctx, cursor, log)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return rep, err
		}
		if !ok {
			if f.exitOnIdle > 0 && time.Since(lastInput) >= f.exitOnIdle {
				break
			}
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		lastInput, cursor = time.Now(), (p+1)%n
		s := open[p]
		if s == nil {
			s = &shard{first: m.Offset}
			open[p] = s
		}
		docs, derr := archiveDocs(m)
		if derr != nil {
			log.Warn("message dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", derr)
			dl := pipeline.DeadLetter(pipeline.TopicDeadLetter, "archive", m, derr)
			werr := pipeline.Retry(ctx, log, "write a dead letter", func(ctx context.Context) error {
				// The first attempt outlives a stop by its own timeout.
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				return dead.Write(wctx, dl)
			})
			if werr != nil {
				if ctx.Err() != nil {
					break // the shard ends before m, which is read again on restart
				}
				return rep, fmt.Errorf("dead letter: %w", werr)
			}
		}
		s.docs = append(s.docs, docs...)
		s.last = m.Offset
		s.msgs++
		if s.msgs >= f.shardMsgs {
			rep.Docs += int64(len(s.docs))
			if err := flush(p); err != nil {
				return rep, err
			}
		}
	}
	for _, s := range open {
		if s != nil {
			rep.Docs += int64(len(s.docs))
		}
	}
	return rep, flushAll()
}

// archiveDocs decodes the documents of one routed message.
func archiveDocs(m kafka.Message) ([]schemas.Document, error) {
	if _, err := schemas.CheckMessage(headerValue(m, schemas.HeaderContentType), headerValue(m, schemas.HeaderSchemaVersion), m.Value); err != nil {
		return nil, err
	}
	recs, err := schemas.DecodeRecords(m.Value, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	var out []schemas.Document
	for _, rec := range recs {
		docs, err := schemas.Documents(rec)
		if err != nil {
			return nil, err
		}
		for i := range docs.Len() {
			out = append(out, docs.Doc(i))
		}
	}
	return out, nil
}
