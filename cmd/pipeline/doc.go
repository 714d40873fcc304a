// Command pipeline is the domainflow command line: it runs the embedded
// Kafka-protocol broker, moves documents into Kafka, shows what is on a topic
// or in a file, manages topics, and runs the pipeline stages.
//
//	pipeline broker   [--listen ADDR] [--data-dir DIR]     embedded broker until SIGINT/SIGTERM
//	pipeline ingest   [--topic T] [--json] INPUT...        .jsonl[.gz], .parquet, folder of .txt, - → topic
//	pipeline replay   [--rate DOCS/S] [--json] FILE.parquet...
//	pipeline inspect  --topic T [--max N] | FILE           messages or file rows → JSON lines
//	pipeline topics   list [--json] | create NAME... [--partitions N] [--config k=v]
//	pipeline identity [--in T] [--out T] [--json]          diagnostics stage through the runtime
//	pipeline version  [--json]
//
// Every command reads its flags from the command line and, for flags not set
// there, from the JSON or YAML file given with --config. Commands that talk
// to Kafka share the --brokers, --tls-* and --sasl-* flags (flags.go) and
// check early, with a short timeout, that the brokers answer.
//
// Exit status: 0 on success and on a graceful stop (SIGINT or SIGTERM), 1 on
// an error, 2 on a usage error (unknown command or flag, bad flag value, bad
// config file), 3 when ingest or replay delivered everything it read but
// input files were incomplete. An error is printed as one line, "pipeline: <error>", on
// stderr; commands that report print their report on stdout (exactly one JSON
// object with --json) and log only on stderr.
//
// The command is a thin shell: each command turns its flags into a
// library config and makes one call (flow.Job for run, the stage packages
// for the stages, report for the page). Layering: cmd → flow, report → stages/* → pipeline → schemas, accel.
package main
