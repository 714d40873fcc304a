package pipeline

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the runtime's Prometheus series. Every series carries the stage
// name as label "stage".
type Metrics struct {
	RecordsIn     *prometheus.CounterVec   // stage
	RecordsOut    *prometheus.CounterVec   // stage, topic
	DeadLetters   *prometheus.CounterVec   // stage, reason
	Bytes         *prometheus.CounterVec   // stage, direction=in|out
	BatchSeconds  *prometheus.HistogramVec // stage
	Lag           *prometheus.GaugeVec     // stage, topic, partition
	WriteRetries  *prometheus.CounterVec   // stage
	CommitFailure *prometheus.CounterVec   // stage
	Duplicates    *prometheus.CounterVec   // stage
	Unaccounted   *prometheus.CounterVec   // stage
}

// NewMetrics creates the series and registers them with reg (which may be
// nil for unregistered metrics, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RecordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "records_in_total",
			Help: "Input records (rows, or whole messages that could not be decoded) taken by a stage.",
		}, []string{"stage"}),
		RecordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "records_out_total",
			Help: "Rows written by a stage, by output topic.",
		}, []string{"stage", "topic"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "deadletters_total",
			Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"stage", "reason"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "bytes_total",
			Help: "Message payload bytes read (in) and written (out) by a stage.",
		}, []string{"stage", "direction"}),
		BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "domainflow", Name: "batch_seconds",
			Help:    "Time from a micro-batch's first fetched message to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"stage"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "domainflow", Name: "consumer_lag",
			Help: "Messages of an input partition this process consumes that its consumer group has not committed yet: " +
				"the partition's end offset (high watermark) minus the group's next offset to consume. " +
				"Only the partitions assigned to this process; a partition that moves to another process leaves.",
		}, []string{"stage", "topic", "partition"}),
		WriteRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "write_retries_total",
			Help: "Batches whose write was retried because the broker did not acknowledge it.",
		}, []string{"stage"}),
		CommitFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "commit_failures_total",
			Help: "Offset commits that failed after retries (the input is redelivered).",
		}, []string{"stage"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "duplicates_total",
			Help: "Input rows a stage dropped as duplicates of rows it already handled (re-sent by a restarted upstream stage).",
		}, []string{"stage"}),
		Unaccounted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "domainflow", Name: "unaccounted_rows_total",
			Help: "Input rows a one-to-one stage neither output, dead-lettered nor dropped as duplicates (a bug; always 0).",
		}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.RecordsIn, m.RecordsOut, m.DeadLetters, m.Bytes, m.BatchSeconds,
			m.Lag, m.WriteRetries, m.CommitFailure, m.Duplicates, m.Unaccounted)
	}
	return m
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves reg in the Prometheus text format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
