// Package pipetest is the Kafka half of the stage test kit: it starts an
// embedded broker for a test and produces and reads topics, so a stage gets
// the same test with Kafka that pipeline.MemSource and pipeline.MemSink give
// it without. Like net/http/httptest, it is meant for tests only.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. pipetest
// is part of pipeline (it may talk to Kafka) and is for tests only.
package pipetest
