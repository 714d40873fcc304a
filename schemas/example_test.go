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
		fmt.Printf("%+v %+v\n", docs.Doc(i), docs.Origin(i))
	}
	if err := schemas.WriteRecordJSON(os.Stdout, recs[0]); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {ID:a Text:hello Meta:[]} {Topic:docs.raw Partition:0 Offset:7 Row:0}
	// {ID:b Text:world Meta:[123 34 108 97 110 103 34 58 34 101 110 34 125]} {Topic:docs.raw Partition:0 Offset:8 Row:0}
	// {"id":"a","text":"hello","meta":null,"origin_topic":"docs.raw","origin_partition":0,"origin_offset":7,"origin_row":0}
	// {"id":"b","text":"world","meta":"{\"lang\":\"en\"}","origin_topic":"docs.raw","origin_partition":0,"origin_offset":8,"origin_row":0}
}
