package cluster

import (
	"bytes"
	"os"
	"testing"
)

// TestRouterDamage flips every byte of a router, as router.models carries
// it and as its Arrow file holds it, in turn: each result either fails to
// decode or decodes to the very same router (a byte of padding), never to
// another one, and never crashes the process. Flips in the settings (its
// version, next id, ...) were not caught by the table's checksum, and a
// damaged length in an Arrow file made the reader allocate terabytes.
func TestRouterDamage(t *testing.T) {
	m := testRouter(3, 4, 5)
	m.Version = 7
	payload, err := EncodeRouter(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := SaveRouter(dir, m); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(RouterPath(dir, 7))
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepathIn(t)
	decoders := []struct {
		name   string
		data   []byte
		decode func([]byte) (*RouterModel, error)
	}{
		{"payload", payload, DecodeRouter},
		{"arrow file", file, func(b []byte) (*RouterModel, error) {
			if err := os.WriteFile(damaged, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return LoadRouterFile(damaged)
		}},
	}
	stride := 1
	if testing.Short() {
		stride = 5
	}
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			want, err := d.decode(d.data)
			if err != nil {
				t.Fatal(err)
			}
			wantBytes, _ := EncodeRouter(want)
			for i := 0; i < len(d.data); i += stride {
				b := bytes.Clone(d.data)
				b[i] ^= 0x01
				got, err := d.decode(b)
				if err != nil {
					continue
				}
				if gotBytes, _ := EncodeRouter(got); !bytes.Equal(gotBytes, wantBytes) {
					t.Fatalf("byte %d flipped: decoded to another router (v%d, next id %d)", i, got.Version, got.NextID)
				}
			}
			// A changed version in the settings is always caught.
			at := bytes.Index(d.data, []byte(`"version":7`))
			if at < 0 {
				t.Fatal("no version in the settings")
			}
			b := bytes.Clone(d.data)
			b[at+len(`"version":`)] = '8'
			if got, err := d.decode(b); err == nil {
				t.Fatalf("a router whose settings say v%d decoded", got.Version)
			}
		})
	}
}

// filepathIn returns the path of an .arrow file in a temp dir of t.
func filepathIn(t *testing.T) string { return t.TempDir() + "/router-000001.arrow" }
