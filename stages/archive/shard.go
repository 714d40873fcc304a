package archive

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/schemas"
)

// ShardName is the file name of the shard of input partition p's messages
// first to last, both included: part-PPP-FFFFFFFFFFFF-LLLLLLLLLLLL.parquet.
func ShardName(p int, first, last int64) string {
	return fmt.Sprintf("part-%03d-%012d-%012d.parquet", p, first, last)
}

// ParseShardName reads a name ShardName wrote; ok is false for any other
// name (another file in the directory, a temp file of a shard being
// written).
func ParseShardName(name string) (p int, first, last int64, ok bool) {
	rest, ok1 := strings.CutPrefix(name, "part-")
	rest, ok2 := strings.CutSuffix(rest, ".parquet")
	f := strings.Split(rest, "-")
	if !ok1 || !ok2 || len(f) != 3 {
		return 0, 0, 0, false
	}
	p, err1 := strconv.Atoi(f[0])
	first, err2 := strconv.ParseInt(f[1], 10, 64)
	last, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || name != ShardName(p, first, last) {
		return 0, 0, 0, false
	}
	return p, first, last, true
}

// NextOffsets returns, per partition, the offset after the last one the
// shards in dir hold: where a restarted sink goes on. A partition without
// a shard is absent, and so is every partition when dir does not exist.
func NextOffsets(dir string) (map[int]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the shards: %w", err)
	}
	next := map[int]int64{}
	for _, e := range ents {
		if p, _, last, ok := ParseShardName(e.Name()); ok {
			next[p] = max(next[p], last+1)
		}
	}
	return next, nil
}

// shard is a partition's open shard: the records of its messages first to
// last so far, all with the extra columns named by key.
type shard struct {
	recs        []arrow.Record
	rows        int64
	key         string // schemas.ExtraKey of the records ("" when none)
	first, last int64
	msgs        int // messages taken, dead-lettered ones included
}

func (s *shard) release() {
	if s != nil {
		releaseRecords(s.recs)
		s.recs = nil
	}
}

func releaseRecords(recs []arrow.Record) {
	for _, rec := range recs {
		rec.Release()
	}
}

// errNotArrow rejects a JSON message: a domain topic carries the Arrow
// batches of the routing stage, and a message of another content type is
// dead-lettered as a malformed batch.
var errNotArrow = &schemas.DecodeError{Reason: schemas.ReasonMalformedArrow,
	Err: errors.New("archive: a domain topic carries Arrow record batches of routed documents, not a JSON document")}

// documents decodes the records of one routed message, checked to hold
// documents with one set of extra columns; the caller releases them. Its
// errors are *schemas.DecodeError, whose reason names the dead letter.
func documents(m pipeline.Message) ([]arrow.Record, error) {
	ct, err := schemas.CheckMessage(pipeline.HeaderValue(m, schemas.HeaderContentType), pipeline.HeaderValue(m, schemas.HeaderSchemaVersion), m.Value)
	if err != nil {
		return nil, err
	}
	if ct != schemas.ContentTypeArrow {
		return nil, errNotArrow
	}
	d, err := pipeline.DecodeMessage(m, schemas.Limits{}, nil)
	if err != nil {
		return nil, err
	}
	for _, rec := range d.Records {
		if _, err := schemas.Documents(rec); err != nil {
			d.Release()
			return nil, err
		}
		if schemas.ExtraKey(rec) != schemas.ExtraKey(d.Records[0]) {
			d.Release()
			return nil, &schemas.DecodeError{Reason: schemas.ReasonWrongSchema, Err: errors.New("archive: records of one message with different extra columns")}
		}
	}
	return d.Records, nil
}
