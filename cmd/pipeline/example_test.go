package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Inspect prints the rows of a file as JSON lines; --max caps them. Errors
// are one line on stderr and set the exit status.
func Example_inspectFile() {
	dir, _ := os.MkdirTemp("", "inspect")
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "docs.jsonl")
	_ = os.WriteFile(in, []byte("{\"id\":\"1\",\"text\":\"one\"}\n{\"id\":\"2\",\"text\":\"two\"}\n"), 0o644)

	code := run(context.Background(), []string{"inspect", "--max", "1", in}, strings.NewReader(""), os.Stdout, os.Stdout)
	fmt.Println("exit", code)

	code = run(context.Background(), []string{"ingest", "--no-such-flag", in}, strings.NewReader(""), os.Stdout, os.Stdout)
	fmt.Println("exit", code)
	// Output:
	// {"id":"1","text":"one"}
	// exit 0
	// pipeline: unknown flag: --no-such-flag (see 'pipeline ingest --help')
	// exit 2
}
