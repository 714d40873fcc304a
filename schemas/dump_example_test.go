package schemas_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/domainflow/domainflow/schemas"
)

// DumpFile prints the rows of a file as JSON lines, whatever its format:
// here a Parquet file of documents, then a file of no known format.
func ExampleDumpFile() {
	dir, _ := os.MkdirTemp("", "dump")
	defer os.RemoveAll(dir)
	pq := filepath.Join(dir, "docs.parquet")
	f, _ := os.Create(pq)
	_ = schemas.WriteParquetDocuments(f, []schemas.Document{{ID: "1", Text: "one"}, {ID: "2", Text: "two"}})
	_ = f.Close()

	if err := schemas.DumpFile(os.Stdout, pq); err != nil {
		fmt.Println(err)
	}
	notes := filepath.Join(dir, "notes.md")
	_ = os.WriteFile(notes, []byte("# notes\n"), 0o644)
	err := schemas.DumpFile(os.Stdout, notes)
	fmt.Println(filepath.Base(err.Error()))
	// Output:
	// {"id":"1","text":"one","meta":null}
	// {"id":"2","text":"two","meta":null}
	// notes.md: not a Parquet or Arrow file, and not named .parquet, .arrow, .arrows, .ipc, .jsonl, .jsonl.gz or .txt
}
