//go:build integration

package pipeline_test

import (
	"os"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/pipeline"
)

// With the integration tag the Kafka tests also run against the brokers in
// DOMAINFLOW_KAFKA_BROKERS (scripts/test-integration.sh starts a real Apache
// Kafka and sets it); DOMAINFLOW_KAFKA_NAME names it in test output.
func init() {
	externalBrokers = func(t testing.TB) []namedBroker {
		addr := os.Getenv("DOMAINFLOW_KAFKA_BROKERS")
		if addr == "" {
			t.Fatal("integration build: DOMAINFLOW_KAFKA_BROKERS is not set (run make test-integration)")
		}
		name := os.Getenv("DOMAINFLOW_KAFKA_NAME")
		if name == "" {
			name = "kafka"
		}
		return []namedBroker{{name: name, cc: pipeline.ClientConfig{Brokers: strings.Split(addr, ",")}}}
	}
}
