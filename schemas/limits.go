package schemas

// Size limits, end to end. Every limit on the size of a record, from the
// input line to the broker, is derived here, so that one invariant holds:
//
//	A document that passes validation with MaxTextBytes at most
//	MaxLineBytes/8 (the default DefaultMaxTextBytes is), read from a line
//	of at most MaxLineBytes, fits in one message once encoded as a JSON
//	message (its id as the key, at most DefaultMaxIDBytes) or as an Arrow
//	row, features included. Anything larger is dead-lettered with
//	ReasonOversize, and the dead letter itself fits in any topic, even one
//	with Kafka's default limit of 1 MB: its value is cut to
//	MaxDeadLetterValueBytes.
//
// The figures behind it: a JSON message is at most its input line plus a
// generated id and the key (a line's escapes are never longer than the
// encoder's); an Arrow document row is at most the line; a features row adds
// at most 8 bytes (an index and a value) per two bytes of text, so 4 ×
// MaxTextBytes. With a text limit of MaxLineBytes/8 that is MaxLineBytes +
// MaxLineBytes/2 = 24 MiB, under MaxBatchBytes.
//
// The pipeline applies them as follows (package pipeline): the embedded
// broker's message.max.bytes and the max.message.bytes of every topic it
// creates are MaxMessageBytes; every writer's batch bytes, and so the largest
// message a writer sends, are MaxBatchBytes; a reader fetches up to
// MaxMessageBytes. A topic made elsewhere with a smaller limit is met by
// splitting the batches the broker refuses and dead-lettering, as oversize, a
// message it refuses alone.
const (
	// MaxMessageBytes is the size limit of one message, or rather of one
	// record batch, on every topic of the pipeline but router.models: the
	// broker's message.max.bytes and the topics' max.message.bytes.
	MaxMessageBytes = 32 << 20

	// MaxBatchBytes caps one produce batch of a writer, so also the largest
	// message (key, value and headers) it sends. It leaves MaxMessageBytes
	// room for the record-batch framing that kafka-go does not count, so a
	// batch a writer sends is never refused for its size by a topic with the
	// limit MaxMessageBytes.
	MaxBatchBytes = MaxMessageBytes - 1<<20

	// MaxLineBytes is the longest input line, or text file, read whole for
	// the default Limits: a longer one is a record with ReasonOversize whose
	// InputRecord.Raw holds only its first RawPrefixBytes. A larger
	// Limits.MaxTextBytes raises it to 8 × MaxTextBytes (for offline reads;
	// documents that large may not fit in a message).
	MaxLineBytes = MaxMessageBytes / 2

	// MaxDeadLetterValueBytes caps the value of a dead letter: a longer
	// payload keeps this prefix (cut at a UTF-8 boundary) and the dead
	// letter says so in a header. With 1 KiB of error text, a key and an
	// origin, a dead letter stays far below Kafka's default limit of 1 MB.
	MaxDeadLetterValueBytes = 512 << 10

	// MaxDeadLetterKeyBytes caps the key of a dead letter (the key of the
	// rejected message, which another producer may have made large); a
	// longer key keeps this prefix.
	MaxDeadLetterKeyBytes = 4 << 10
)

// maxLineBytes is the largest line or text file read whole, for lim.
func maxLineBytes(lim Limits) int {
	return max(MaxLineBytes, 8*lim.maxTextBytes())
}
