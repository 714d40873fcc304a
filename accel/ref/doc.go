// Package ref is the reference accel.Backend, registered as "ref": plain Go,
// one loop nest per formula in the manner of llm.c's train_gpt2.c, with the
// shapes in each doc comment. It is the oracle the conformance suite
// (accel/conformance) holds every other backend to, not a fast path.
//
// Every kernel is a generic function over Float (float32 or float64) so the
// same loops serve two purposes: the Backend methods call the float32
// instantiation, and the tests call the float64 one as a higher-precision
// oracle and as the forward of the finite-difference gradient checks.
//
// The semantics match the accel.Backend documentation; where the interface
// leaves a choice open, ref fixes it: AttentionForward writes 0 to preatt
// and att above the diagonal (t2 > t), AttentionBackward overwrites all of
// dpreatt and datt (0 above the diagonal), ArgminRows of an empty row gives
// index -1 and +Inf. Transcendentals (tanh, exp, log, sqrt) go through the
// float64 math package in both instantiations.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. This
// package is part of accel and imports nothing above it.
package ref
