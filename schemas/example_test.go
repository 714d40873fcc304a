package schemas_test

import (
	"fmt"
	"os"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/domainflow/domainflow/schemas"
)

func ExampleDecodeJSON() {
	payload := []byte(`{"id": 42, "text": "caf\u00e9 \ud83d\ude00", "source": "brown", "tags": ["a", "b"]}`)
	d, err := schemas.DecodeJSON(payload, schemas.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("id=%s text=%s meta=%s\n", d.ID, d.Text, d.Meta)

	_, err = schemas.DecodeJSON([]byte(`{"id": "x", "text": "  "}`), schemas.Limits{})
	fmt.Println(schemas.ReasonOf(err))
	// Output:
	// id=42 text=café 😀 meta={"source":"brown","tags":["a","b"]}
	// empty-text
}

func ExampleDocuments() {
	b := schemas.NewDocumentBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.Append(schemas.Document{ID: "a", Text: "hello"}, schemas.Origin{Topic: "docs.raw", Partition: 0, Offset: 7})
	b.Append(schemas.Document{ID: "b", Text: "world", Meta: []byte(`{"lang":"en"}`)}, schemas.Origin{Topic: "docs.raw", Partition: 0, Offset: 8})
	rec := b.NewRecord()
	defer rec.Release()

	payload, err := schemas.EncodeRecord(rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, err := schemas.DecodeRecords(payload, memory.DefaultAllocator)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer recs[0].Release()
	docs, err := schemas.Documents(recs[0])
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < docs.Len(); i++ {
		d, o := docs.Doc(i), docs.Origin(i)
		fmt.Printf("%s %q meta=%s from %s/%d@%d\n", d.ID, d.Text, d.Meta, o.Topic, o.Partition, o.Offset)
	}
	if err := schemas.WriteRecordJSON(os.Stdout, recs[0]); err != nil {
		fmt.Println(err)
	}
	// Output:
	// a "hello" meta= from docs.raw/0@7
	// b "world" meta={"lang":"en"} from docs.raw/0@8
	// {"id":"a","text":"hello","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":7,"origin_row":0}
	// {"id":"b","text":"world","meta":"{\"lang\":\"en\"}","origin_topic":"docs.raw","origin_partition":0,"origin_offset":8,"origin_row":0}
}
