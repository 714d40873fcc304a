// Package schemas defines what flows between the stages of the pipeline:
// the Arrow schemas of every kind of row, their version, and the encoding and
// decoding of Kafka payloads, Parquet rows and input files.
//
// Documents enter as JSON objects, one per Kafka message
// ({"id": …, "text": …, other fields kept in Document.Meta}), decoded by
// DecodeJSON, or as Arrow IPC streams. Between stages every payload is an
// Arrow IPC stream (EncodeRecord, DecodeRecords) of one of five schemas —
// DocumentSchema, FeaturesSchema, RoutedSchema, RouterModelSchema and
// CheckpointSchema — each carrying its Kind and the schema Version in its
// metadata; Kafka messages carry both in the content-type and schema-version
// headers (CheckHeaders). The Features and Routed schemas start with the
// document columns, so Documents reads the documents and their Origin out of
// any of the three, and AppendDocument fills them in any builder.
//
// A Document, Features or Routed record may carry extra columns: columns a
// user stage added to its documents, which the featurization and routing
// stages carry row for row to docs.domain.<id> after their own columns, and
// which the archive writes into its shards (WriteParquetRecords). CheckSchema
// accepts them, in any place, when each has a name that none of our columns
// has (IsReservedColumn) and that appears once, and no field metadata under
// MetaPrefix; the stages carry those of a type ExtraTypeSupported accepts
// (Extend). Others are refused with ReasonWrongSchema.
// Schema-level metadata belongs to the record's kind: a stage keeps MetaKind
// and MetaSchemaVersion, and other schema-level keys are not carried to the
// next stage (field metadata is). JSON documents have no extra columns: their
// other fields are Meta, and so are the other columns of a Parquet input
// file. A dead letter holds its row as a JSON document, without the row's
// extra columns.
//
// Every decoder treats its input as untrusted: it never panics, and a bad
// input is a *DecodeError whose Reason (ReasonOf) is the dead-letter reason
// that goes into a Kafka header. OpenInput reads the input files of the CLI
// (JSON lines, gzip or not, Parquet, folders of .txt files, stdin) and
// reports bad records in-line, so that a caller can dead-letter them and go
// on; a file it cannot read to its end (truncated, corrupt, unreadable) is
// one more bad record, an *IncompleteError, and the files after it are read.
// DocReader reads the good documents of several inputs in order for the
// offline commands, keeping their ids, texts and metadata and counting the
// rejected records (CheckInputs checks that the paths exist).
// WriteRecordJSON, WriteArrowFileJSON and WriteParquetJSON render any
// record or file as JSON lines, and DumpFile any file the CLI reads or
// writes (Parquet, Arrow IPC, JSON lines, folders of .txt), for
// `pipeline inspect`.
//
// Arrow payloads are checked before the arrow reader trusts them: message
// framing, the flatbuffers metadata (vector lengths, nesting), buffer sizes
// (through a bounded allocator) and every offset of the decoded arrays.
// Parquet files are checked as far as their metadata goes (trailer, footer,
// page headers; LZ4 pages are refused); page data is decoded by parquet-go,
// which trusts run lengths, so a corrupt local Parquet file can still make it
// allocate far more than the file holds.
//
// The package imports nothing else of this module and no Kafka client.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. schemas
// is the bottom layer that every other package reads its formats from.
package schemas
