// Package pipeline is the stage runtime of domainflow: it moves Arrow record
// batches between Kafka topics around a Stage, whose logic is a pure function
// over one batch.
//
// A Runner fetches messages from a Source (a kafka-go consumer group in
// production, a MemSource in tests), decodes them into Arrow records (JSON
// documents at ingress, Arrow IPC batches between stages), groups them into
// micro-batches capped by count, bytes and linger time, calls the Stage, and
// writes what it returns to a Sink on the same partition number the input came
// from, so partition order is kept end to end. Input offsets are committed only
// after the Sink acknowledged every message derived from them: delivery between
// stages is at-least-once, and duplicates can only come from the window of
// messages written but not yet committed when a process died.
//
// Anything that cannot be processed — malformed JSON or Arrow, invalid UTF-8,
// empty or oversize text, an unknown schema version, a wrong content type, a
// row the stage rejects — is written to the dead-letter topic with the reason
// and its origin (topic, partition, offset, row) in headers; the runner keeps
// going and counts every outcome, so inputs = outputs + dead letters +
// dropped duplicates (rows a stage reports in Result.Dropped). Origins are
// stamped by the runner at ingress from where it read each document, never
// taken from the input (RunnerConfig.TrustOrigins); OriginChecker tells a
// downstream stage whether an origin a row claims can exist.
//
// What a stage author meets. A stage may drop rows only in two counted ways:
// as dead rows (Result.Dead, each with a schemas.Reason; the runner writes
// it to the dead-letter topic as a JSON document, without the row's extra
// columns) or as duplicates of rows it already handled (Result.Dropped); a
// filtering stage, which drops rows on purpose, reports them as dead with a
// reason of its own. With RunnerConfig.OneToOne the runner checks on every
// batch that input rows = output rows + dead + dropped and counts any
// difference (Counts.Unaccounted). A stage that adds columns to its documents
// keeps the schema's kind and version metadata and follows the rules of
// extra columns in package schemas (names none of ours, no field metadata
// under schemas.MetaPrefix, a type schemas.ExtraTypeSupported accepts); the
// featurization and routing stages then carry those columns to
// docs.domain.<id>. A Runner never closes its Source or Sink: whoever opened
// them closes them after Run returns (RunStage opens and closes its own
// KafkaSource and KafkaSink; a test closes its MemSource input with
// CloseInput so that Run returns once it is drained). The runner releases
// the record it hands a Stage once the Stage returns (a Stage that keeps it
// calls Retain), and the records the Stage returns once they are written.
//
// A PartitionStage keeps state per input partition that moves with the
// partition between the processes of a consumer group: the runner saves a
// snapshot to a StateStore after every batch, before it commits, and the
// process that takes a partition over restores it, so redelivered rows are
// handled exactly as the first time (the routing stage places every document
// in one domain, whichever process routes it). KafkaSource runs the group
// protocol with kafka-go's ConsumerGroup and reads each assigned partition
// in a goroutine of its own; it counts generations, so the runner knows when
// partitions may have moved.
//
// The package also runs the embedded Kafka-protocol broker (kfake) used by
// `pipeline broker`, `pipeline run` and the tests, creates and lists topics,
// and exports Prometheus metrics (Metrics; a Runner whose Source is a
// LagReporter publishes the consumer lag of each partition it is assigned).
// GroupCommitter lets a consumer that keeps its own positions (a trainer)
// show them to Kafka's tools as a consumer group's offsets. The in-memory MemSource and MemSink, and the
// pipetest package, are the test kit for stage-level tests with and without
// Kafka.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. pipeline
// is the only package that imports the Kafka client (kafka-go): the stages
// reach Kafka through its types (Runner, KafkaSource, Producer and KafkaSink,
// PartitionConsumer and RoundRobin, ControlTopic, Scan, DecodeMessage,
// HeaderValue, DeadLetterSpec), and pipeline/process turns a Stage into a
// program.
package pipeline
