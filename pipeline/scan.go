package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// PartitionRange is the offsets of one partition to read: [Start, End), or
// from Start on when following.
type PartitionRange struct {
	Partition  int
	Start, End int64
}

// PartitionRanges lists the offsets to read from each of parts of topic:
// from the first offset kept (fromBeginning) or from the end, to the end
// offset at the time of the call.
func PartitionRanges(ctx context.Context, cc ClientConfig, topic string, parts []int, fromBeginning bool) ([]PartitionRange, error) {
	req := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		req = append(req, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl := cc.Client()
	defer CloseClient(cl)
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("topic %s: list offsets: %w", topic, err)
	}
	byPart := map[int]kafka.PartitionOffsets{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("topic %s partition %d: list offsets: %w", topic, po.Partition, po.Error)
		}
		byPart[po.Partition] = po
	}
	ranges := make([]PartitionRange, 0, len(parts))
	for _, p := range parts {
		po, ok := byPart[p]
		if !ok {
			return nil, fmt.Errorf("topic %s partition %d: no offsets in the broker's answer", topic, p)
		}
		r := PartitionRange{Partition: p, Start: po.FirstOffset, End: po.LastOffset}
		if !fromBeginning {
			r.Start = r.End
		}
		ranges = append(ranges, r)
	}
	return ranges, nil
}

// ScanConfig configures Scan.
type ScanConfig struct {
	Topic  string
	Ranges []PartitionRange
	// Follow reads on past the ends for new messages until ctx ends or no
	// message came for Timeout; without it each range is read to its End.
	Follow bool
	// Timeout: without Follow, how long a partition may be silent before
	// its end offset (the rest is skipped with a warning); with it, the
	// silence of all partitions that ends the scan. Default: 10s.
	Timeout time.Duration
	Logger  *slog.Logger // default slog.Default()
}

// Scan reads the ranges of a topic, every partition at once, and calls fn
// with each message on the caller's goroutine: without Follow in partition
// order (the ranges' order), then offset order; with it in arrival order.
// It stops at fn's first error, which it returns.
func Scan(ctx context.Context, cc ClientConfig, cfg ScanConfig, fn func(Message) error) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(cfg.Ranges))
	)
	read := func(i int, ch chan<- Message) {
		defer wg.Done()
		errs[i] = scanPartition(ctx, cc, cfg, cfg.Ranges[i], ch, log)
	}
	if !cfg.Follow {
		// One channel per partition, handed to fn in partition order while
		// every partition is fetched at once.
		chans := make([]chan Message, len(cfg.Ranges))
		for i := range cfg.Ranges {
			chans[i] = make(chan Message, 256)
			wg.Add(1)
			go func() { // owner: Scan; ends at the partition's end offset, on silence or on cancel
				defer close(chans[i])
				read(i, chans[i])
			}()
		}
		defer wg.Wait()
		for i, ch := range chans {
			for m := range ch {
				if err := fn(m); err != nil {
					cancel()
					return err
				}
			}
			if errs[i] != nil && ctx.Err() == nil {
				cancel()
				return errs[i]
			}
		}
		return nil
	}

	// Following: one channel for all partitions; stop after Timeout of
	// silence or at the end of ctx.
	msgs := make(chan Message, 256)
	for i := range cfg.Ranges {
		wg.Add(1)
		go read(i, msgs) // owner: Scan; ends when ctx is cancelled
	}
	go func() { wg.Wait(); close(msgs) }() // owner: Scan; ends when every reader did
	defer func() {
		cancel()
		for range msgs { // let the readers finish
		}
	}()
	silence := time.NewTimer(cfg.Timeout)
	defer silence.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return errors.Join(errs...)
			}
			if err := fn(m); err != nil {
				return err
			}
			silence.Reset(cfg.Timeout)
		case <-silence.C:
			log.Debug("no message for the timeout; stopping", "timeout", cfg.Timeout)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// scanPartition sends the messages of one partition to ch: up to the end
// offset, or until ctx ends when following.
func scanPartition(ctx context.Context, cc ClientConfig, cfg ScanConfig, pr PartitionRange, ch chan<- Message, log *slog.Logger) error {
	if !cfg.Follow && pr.Start >= pr.End {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   cc.Brokers,
		Topic:     cfg.Topic,
		Partition: pr.Partition,
		Dialer:    cc.Dialer(),
		MinBytes:  1,
		MaxBytes:  32 << 20,
		MaxWait:   250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(pr.Start); err != nil {
		return fmt.Errorf("partition %d: seek to %d: %w", pr.Partition, pr.Start, err)
	}
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if !cfg.Follow {
			rctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		}
		m, err := r.ReadMessage(rctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			log.Warn("partition silent before its end offset; skipping the rest",
				"partition", pr.Partition, "end_offset", pr.End, "timeout", cfg.Timeout)
			return nil
		default:
			return fmt.Errorf("partition %d: %w", pr.Partition, err)
		}
		select {
		case ch <- m:
		case <-ctx.Done():
			return nil
		}
		if !cfg.Follow && m.Offset+1 >= pr.End {
			return nil
		}
	}
}
