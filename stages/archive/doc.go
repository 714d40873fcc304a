// Package archive is the archive sink: it copies the routed documents of
// the domain topics (docs.domain.<id>) into Parquet shards that trainers
// outside this project read with pyarrow, duckdb or polars.
//
// Each domain gets a directory Config.Dir/<id>/ of shards named
//
//	part-PPP-FFFFFFFFFFFF-LLLLLLLLLLLL.parquet (ShardName)
//
// holding exactly the messages of input partition PPP from offset F to
// offset L, both included, in offset order: their documents as the columns
// id, text and meta (the rows every --in of the CLI reads), where they came
// from and how they were routed (origin_topic, origin_partition,
// origin_offset, origin_row, and for routed rows domain, distance and
// router_version), then any extra columns a user stage added to them, with
// their names and types (schemas.WriteParquetShard; zstd, row groups of at
// most schemas.ParquetRowGroupRows rows). Read back as input (replay), a
// shard gives its documents, extra columns in meta, without the origin and
// routing columns. A shard closes after
// Config.ShardMessages messages, before a message whose extra columns differ
// from its own, and when the sink stops (Config.ExitOnIdle or the end of
// ctx). A message that does not decode to documents is dead-lettered on
// pipeline.TopicDeadLetter (stage "archive") and still counts as one of its
// shard's messages, so the offsets of the shards of a partition follow each
// other without a gap.
//
// Shards are written atomically (schemas.WriteFileAtomic), and the shard
// names are the sink's only state: a restarted sink reads them (Resume) and
// goes on after the last offset its shards hold, so a kill at any point
// archives nothing twice and skips nothing. It joins no consumer group and
// commits no offsets. Each partition is read by its own goroutine
// (pipeline.PartitionConsumer), and a broker outage is ridden out
// (pipeline.Retry) rather than ending the sink.
//
// Which domains to archive is asked of a DomainSource, so that the sink
// does not depend on how domains are discovered: the CLI's adapter reads the
// routers on router.models, IDs is a fixed list.
//
// Layering: stages/archive imports pipeline and schemas, and no other
// stage; only cmd and flow import it.
package archive
