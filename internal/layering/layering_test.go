package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/domainflow/domainflow/"

// imports maps each package dir of the module (relative, slash-separated)
// to the imports of its non-test files.
func imports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if out[rel] == nil {
			out[rel] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[rel][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d packages under %s", len(out), root)
	}
	return out
}

// layer is the layer of a package dir.
func layer(dir string) string {
	switch {
	case dir == "schemas" || strings.HasPrefix(dir, "schemas/"):
		return "schemas"
	case dir == "accel" || strings.HasPrefix(dir, "accel/"):
		return "accel"
	case dir == "pipeline" || strings.HasPrefix(dir, "pipeline/"):
		return "pipeline"
	case strings.HasPrefix(dir, "stages/"):
		return "stages"
	case dir == "flow" || strings.HasPrefix(dir, "flow/"):
		return "flow"
	case dir == "report" || strings.HasPrefix(dir, "report/"):
		return "report"
	case strings.HasPrefix(dir, "cmd/"):
		return "cmd"
	case strings.HasPrefix(dir, "internal/"):
		return "internal"
	}
	return "other"
}

// allowed lists the layers each layer may import.
var allowed = map[string][]string{
	"internal": {"internal"},
	"schemas":  {"internal"},
	"accel":    {"accel", "internal"},
	"pipeline": {"pipeline", "schemas", "internal"},
	"stages":   {"pipeline", "schemas", "accel", "internal"},
	"flow":     {"stages", "pipeline", "schemas", "accel", "internal"},
	"report":   {"stages", "schemas", "accel", "internal"},
	"cmd":      {"flow", "report", "stages", "pipeline", "schemas", "accel", "internal"},
	"other":    {"flow", "report", "stages", "pipeline", "schemas", "accel", "internal"},
}

func TestImportsFlowOneWay(t *testing.T) {
	for dir, ims := range imports(t) {
		from := layer(dir)
		for p := range ims {
			if p == "github.com/segmentio/kafka-go" || strings.HasPrefix(p, "github.com/segmentio/kafka-go/") {
				if from != "pipeline" {
					t.Errorf("%s imports %s: only pipeline/ talks to Kafka", dir, p)
				}
			}
			if !strings.HasPrefix(p, module) {
				continue
			}
			to := strings.TrimPrefix(p, module)
			tl := layer(to)
			ok := false
			for _, a := range allowed[from] {
				ok = ok || a == tl
			}
			if !ok {
				t.Errorf("%s (%s) imports %s (%s): against the layering cmd → flow, report → stages/* → pipeline → schemas, accel", dir, from, to, tl)
			}
			if from == "stages" && tl == "stages" && strings.SplitN(dir, "/", 3)[1] != strings.SplitN(to, "/", 3)[1] {
				t.Errorf("%s imports %s: stages never import each other (what spans stages lives in flow)", dir, to)
			}
		}
	}
}

func TestEveryPackageHasDoc(t *testing.T) {
	for dir := range imports(t) {
		if strings.HasPrefix(dir, "e2e") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", dir)
		}
	}
}
