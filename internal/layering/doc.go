// Package layering holds the test that keeps the imports of the module
// one-way: cmd → flow, report → stages/* → pipeline → schemas, accel.
// Stages never import each other, only cmd imports flow, and nothing
// outside pipeline/ imports the Kafka client (tests excepted). It has no
// code of its own.
package layering
