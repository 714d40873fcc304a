// Package ingest is the ingress stage of the pipeline: files → docs.raw.
//
// Run reads the inputs (JSON lines, gzipped JSON lines, Parquet, a folder of
// .txt files, or a reader standing for stdin; see schemas.OpenInput) and
// produces each good document to the topic as the JSON message
// {"id","text",<other fields>}, keyed by its id (murmur2 partitioning, as the
// Java and librdkafka clients do), with the content headers of the pipeline
// (pipeline.ContentHeaders). A document without an id gets
// <file base name>-<line or row number>. Bad records — malformed JSON,
// invalid UTF-8, empty text, text or id over the limits — and documents the
// topic refuses for their size go to docs.deadletter instead, with their
// reason, the stage name, and their origin (the input file as origin-topic,
// the line or row as origin-offset). Every message is acknowledged by all
// in-sync replicas; Config.Rate paces the documents.
//
// With Config.Arrow the documents go as Arrow Document batches instead,
// without a key, each batch holding one input's documents of one partition
// (the partition their ids as keys would pick), so the partition of every
// document is what it is in JSON. A Parquet input's columns of simple types
// (booleans, integers, floats, strings, binary) are typed extra columns of
// its batches (schemas.Limits.TypedExtras), which the stages downstream
// carry onto the domain topics and into archive shards; its other fields,
// and every field of a JSON-lines or text input, stay in meta.
//
// A file that cannot be read to its end does not stop the others: the rest
// of it becomes one dead letter and the Report lists it under
// IncompleteFiles. Run returns an error when messages were not delivered;
// the Report, returned with it, says what was. Progress goes to a callback
// in the Config; the package prints nothing.
//
// Layering: cmd/pipeline (ingest, replay) and flow call this package; it
// uses pipeline (the producer, dead letters, topics) and schemas (readers
// and documents), and no other stage.
package ingest
