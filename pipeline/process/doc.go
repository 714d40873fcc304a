// Package process turns a pipeline.Stage into a program: the flags every
// stage process of domainflow shares (Kafka brokers, TLS and SASL, topics,
// consumer group, micro-batch sizes, logging, the Prometheus endpoint), the
// signal handling (the first SIGINT or SIGTERM stops gracefully, committing
// what was acknowledged), the run loop and the stop summary. The `pipeline`
// command's stages use it, and so can a user's own stage:
//
//	func main() {
//		process.Main("upper", pipeline.StageFunc(upper), process.Options{
//			In: "docs.raw", Out: "docs.upper", Group: "upper",
//			Accept: []schemas.Kind{schemas.KindDocument},
//		})
//	}
//
// gives a program that takes --brokers (default $DOMAINFLOW_BROKERS, else
// 127.0.0.1:9092), --tls*, --sasl-* (the password from
// $DOMAINFLOW_SASL_PASSWORD), --in, --out, --group, --batch-records,
// --batch-bytes, --linger, --json, --log-level, --log-format,
// --metrics-addr and --config (a JSON or YAML file of flag values), and exits 0 when stopped by a signal, 2 on a usage error
// and 1 when the stage fails.
//
// Unlike the library packages, process reads the environment (the two
// variables above) and os.Args: it is the layer between a main function and
// the library. Layering: cmd → flow, report → stages/* → pipeline (and
// pipeline/process) → schemas, accel.
package process
