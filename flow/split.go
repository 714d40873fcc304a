package flow

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/ingest"
)

// SplitConfig configures SplitInputs.
type SplitConfig struct {
	// Inputs are read in order; "-" reads JSON lines from Stdin.
	Inputs []string
	Stdin  io.Reader
	// Dir receives train.jsonl.gz and heldout.jsonl.gz (written once: a
	// resumed run finds them and computes the same split again).
	Dir string
	// Heldout is the fraction of each source held out.
	Heldout float64
	// TextField and IDField name the input fields of the text and id (see
	// schemas.Limits). Default "text" and "id".
	TextField, IDField string
	Logger             *slog.Logger // default slog.Default()
}

// Split is the input split into training and held-out documents.
type Split struct {
	// Train are the training documents in the mixed-stream order.
	Train []schemas.Document
	// Rejected are the input records that are not valid documents.
	Rejected []schemas.InputRecord
	// Incomplete are the input files that could not be read to their end;
	// the rest of each is one of the Rejected records.
	Incomplete []ingest.IncompleteFile
	// Heldout is the number of held-out documents, HeldoutTexts their
	// texts in input order.
	Heldout      int
	HeldoutTexts []string
	// TrainPath and HeldoutPath are the files of the split.
	TrainPath, HeldoutPath string
}

// SplitInputs reads the inputs and holds out a fraction of each source (the
// "source" field of a document's metadata, else one group): per source, the
// documents whose SHA-256 of the id ranks in the lowest fraction. The
// training documents are put in a fixed pseudo-random order (by the hash of
// their ids), so that a corpus stored source by source does not reach the
// dense model one source at a time. Bad records and the unread rest of a
// file that cannot be read to its end are kept as Rejected; neither stops
// the split.
func SplitInputs(cfg SplitConfig) (*Split, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	res := &Split{TrainPath: filepath.Join(cfg.Dir, "train.jsonl.gz"), HeldoutPath: filepath.Join(cfg.Dir, "heldout.jsonl.gz")}
	var docs []schemas.Document
	// reject keeps a bad record; one that stands for the unread rest of a
	// file (a truncated gzip, a corrupt Parquet file) also lists the file.
	reject := func(rec schemas.InputRecord) {
		res.Rejected = append(res.Rejected, rec)
		var ie *schemas.IncompleteError
		if errors.As(rec.Err, &ie) {
			res.Incomplete = append(res.Incomplete, ingest.IncompleteFile{File: ie.File, Reason: string(schemas.ReasonOf(rec.Err)), Error: ie.Err.Error(), Records: ie.Records})
			log.Warn("input file incomplete; the rest of it is dead-lettered", "cmd", "run", "file", ie.File,
				"reason", schemas.ReasonOf(rec.Err), "records", ie.Records, "err", ie.Err)
		}
	}
	lim := schemas.Limits{TextField: cfg.TextField, IDField: cfg.IDField}
	for _, in := range cfg.Inputs {
		var (
			r   schemas.InputReader
			err error
		)
		if in == "-" {
			r, err = schemas.NewLineReader("stdin", cfg.Stdin, lim)
		} else {
			r, err = schemas.OpenInput(in, lim)
		}
		if err != nil { // gone since it was checked
			reject(schemas.IncompleteRecord(in, in, 0, err, nil))
			continue
		}
		base := ingest.IDPrefix(in)
		for n := 1; ; n++ {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil { // not from package schemas' readers, whose failures are records
				reject(schemas.IncompleteRecord(in, in, int64(n-1), err, nil))
				break
			}
			if rec.Err != nil {
				reject(rec)
				continue
			}
			if rec.Doc.ID == "" {
				rec.Doc.ID = base + "-" + strconv.Itoa(n)
			}
			docs = append(docs, rec.Doc)
		}
		r.Close()
	}
	groups := map[string][]int{}
	for i, d := range docs {
		var m struct {
			Source string `json:"source"`
		}
		_ = json.Unmarshal(d.Meta, &m)
		groups[m.Source] = append(groups[m.Source], i)
	}
	held := make([]bool, len(docs))
	for _, idx := range groups {
		sort.Slice(idx, func(x, y int) bool {
			hx, hy := sha256.Sum256([]byte(docs[idx[x]].ID)), sha256.Sum256([]byte(docs[idx[y]].ID))
			return bytes.Compare(hx[:], hy[:]) < 0
		})
		nh := int(float64(len(idx))*cfg.Heldout + 0.5)
		for _, i := range idx[:nh] {
			held[i] = true
		}
	}
	var heldDocs []schemas.Document
	for i, d := range docs {
		if held[i] {
			heldDocs = append(heldDocs, d)
			res.HeldoutTexts = append(res.HeldoutTexts, d.Text)
		} else {
			res.Train = append(res.Train, d)
		}
	}
	res.Heldout = len(heldDocs)
	sort.SliceStable(res.Train, func(x, y int) bool {
		hx, hy := sha256.Sum256([]byte("order:"+res.Train[x].ID)), sha256.Sum256([]byte("order:"+res.Train[y].ID))
		return bytes.Compare(hx[:], hy[:]) < 0
	})
	for path, ds := range map[string][]schemas.Document{res.TrainPath: res.Train, res.HeldoutPath: heldDocs} {
		if _, err := os.Stat(path); err == nil {
			continue
		}
		err := schemas.WriteFileAtomic(path, func(fh *os.File) error {
			zw := gzip.NewWriter(fh)
			for _, d := range ds {
				b, err := schemas.AppendJSON(nil, d)
				if err != nil {
					return err
				}
				if _, err := zw.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			return zw.Close()
		})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}
