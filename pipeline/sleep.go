package pipeline

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// Sleep waits d or until ctx ends; it reports whether d elapsed. It is the
// one backoff and pacing wait of the pipeline and of the stages above it.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// WriteErrors is the error of a produce call of which some messages failed:
// one entry per message, nil for those acknowledged (kafka-go's type under
// our name, as Message is). KafkaSink.Write returns it; a WriteFunc built on
// Producer.Produce returns WriteErrors(errs) so that WriteSplitting and
// IsTooLarge can tell which messages to write again.
type WriteErrors = kafka.WriteErrors
