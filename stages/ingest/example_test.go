package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/stages/ingest"
)

// Ingest three JSON lines from memory into an embedded broker: two
// documents reach docs.raw, the line with empty text is dead-lettered.
func ExampleRun() {
	b, err := pipeline.StartBroker(pipeline.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	lines := `{"id":"a","text":"the first document"}
{"id":"b","text":"the second one"}
{"id":"c","text":""}
`
	rep, err := ingest.Run(context.Background(), ingest.Config{
		Client: b.Client(),
		Inputs: []string{"-"},
		Stdin:  strings.NewReader(lines),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("docs %d, text bytes %d, dead letters %d, failed %d\n", rep.Docs, rep.Bytes, rep.DeadLetter, rep.Failed)
	// Output:
	// docs 2, text bytes 32, dead letters 1, failed 0
}
