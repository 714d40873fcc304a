package inflate_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"

	"github.com/domainflow/domainflow/internal/inflate"
)

func Example() {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte("hello, hello, hello, gzip\n"))
	w.Close()

	zr, err := inflate.NewReader(&buf)
	if err != nil {
		log.Fatal(err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output: hello, hello, hello, gzip
}
