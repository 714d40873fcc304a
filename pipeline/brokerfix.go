package pipeline

// Wire fixes for the embedded broker.
//
// kfake (github.com/twmb/franz-go/pkg/kfake, the commit go.mod names) builds a
// few answers that Apache Kafka's Java admin client, and so Kafka's own CLI
// tools (kafka-topics, kafka-consumer-groups), cannot take:
//
//   - DescribeTopicPartitions (key 75): EligibleLeaderReplicas and
//     LastKnownELR are sent as null arrays. The schema allows null, but the
//     Java client (3.9 and 4.x) calls .stream() on them and dies with a
//     NullPointerException: kafka-topics --describe, kafka-consumer-groups
//     --describe and --reset-offsets crash. A real broker sends empty arrays.
//   - CreateTopics v5+ (key 19): Configs is null for a topic created without
//     configs; the Java client's createTopics NPEs ("configs is null"), so
//     kafka-topics --create exits 1 although the topic was created.
//   - ListGroups v4+ (key 16): the states and types filters are compared
//     case-sensitively. A real broker ignores case, and the 4.x client sends
//     the types as "Classic" and "Consumer", so kafka-consumer-groups --list
//     prints nothing.
//
// The fixes sit on the wire, between our listener and kfake: a connection
// wrapper that frames the byte stream (size, api key, version, correlation
// id), rewrites the few ListGroups requests whose filters need it, and patches
// the responses of the two other keys. kfake itself stays the unmodified
// upstream module, so `go get -u` keeps working; each fix is a no-op once
// kfake builds the field itself, and this file (with the wrapper in
// StartBroker) can be deleted when upstream has them. The same fixes, in
// kfake's own code and in the shape of an upstream contribution, are in
// scripts/kafka/kfake-upstream.patch. TestBrokerJavaClientAnswers guards them.
//
// The wrapper relies on two properties of kfake's connection loop: it reads a
// request as a 4-byte size and then the body, and it writes each response with
// one Write call of the whole frame. A Write that is not one whole frame is
// passed through unchanged (the fix would be lost, not the data), and a
// request frame too short to be a Kafka request turns the framing off for the
// rest of the connection.

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxRewrittenRequest bounds the ListGroups request the wrapper reads whole
// to rewrite; a larger one (it never is) passes through untouched.
const maxRewrittenRequest = 1 << 20

// fixListener wraps each accepted connection in a fixConn.
type fixListener struct{ net.Listener }

func (l fixListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &fixConn{Conn: c}, nil
}

// reqKind is the api key and version of a request whose response is patched.
type reqKind struct{ key, version int16 }

// fixConn is a broker-side connection that fixes kfake's answers on the wire.
// Read is called by kfake's one reading goroutine and Write by its one
// writing goroutine; pending is what they share.
type fixConn struct {
	net.Conn

	// Read side.
	hdr  [12]byte // size, api key, version, correlation id of a frame
	out  []byte   // bytes read ahead that kfake has not taken yet
	left int64    // body bytes of the current frame still to pass through
	raw  bool     // framing lost: pass everything through

	// Shared with the write side: the requests whose responses are patched,
	// by correlation id.
	mu       sync.Mutex
	pending  map[int32]reqKind
	npending atomic.Int32
}

func (c *fixConn) Read(p []byte) (int, error) {
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		return n, nil
	}
	if c.raw {
		return c.Conn.Read(p)
	}
	if c.left > 0 {
		if int64(len(p)) > c.left {
			p = p[:c.left]
		}
		n, err := c.Conn.Read(p)
		c.left -= int64(n)
		return n, err
	}

	// A frame starts. Read its size, then (every request has them) its api
	// key, version and correlation id.
	if n, err := io.ReadFull(c.Conn, c.hdr[:4]); err != nil {
		return copy(p, c.hdr[:n]), err
	}
	size := int64(int32(binary.BigEndian.Uint32(c.hdr[:4])))
	if size < 8 {
		c.raw = true
		c.out = c.hdr[:4]
		return c.Read(p)
	}
	if n, err := io.ReadFull(c.Conn, c.hdr[4:12]); err != nil {
		// The connection is going away; hand kfake what came.
		return copy(p, c.hdr[:4+n]), err
	}
	key := int16(binary.BigEndian.Uint16(c.hdr[4:6]))
	version := int16(binary.BigEndian.Uint16(c.hdr[6:8]))
	corr := int32(binary.BigEndian.Uint32(c.hdr[8:12]))
	body := size - 8

	switch {
	case key == int16(kmsg.ListGroups) && version >= 4 && body <= maxRewrittenRequest:
		frame := make([]byte, 12+body)
		copy(frame, c.hdr[:])
		if _, err := io.ReadFull(c.Conn, frame[12:]); err != nil {
			// The connection is going away; hand kfake what came.
			return copy(p, frame[:12]), err
		}
		c.out = fixListGroupsRequest(frame)
	case key == int16(kmsg.DescribeTopicPartitions),
		key == int16(kmsg.CreateTopics) && version >= 5:
		c.track(corr, reqKind{key, version})
		fallthrough
	default:
		c.out = c.hdr[:]
		c.left = body
	}
	return c.Read(p)
}

func (c *fixConn) track(corr int32, k reqKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = make(map[int32]reqKind)
	}
	if _, dup := c.pending[corr]; !dup {
		c.npending.Add(1)
	}
	c.pending[corr] = k
}

func (c *fixConn) Write(p []byte) (int, error) {
	if c.npending.Load() == 0 || len(p) < 8 || int64(binary.BigEndian.Uint32(p[:4])) != int64(len(p)-4) {
		return c.Conn.Write(p)
	}
	corr := int32(binary.BigEndian.Uint32(p[4:8]))
	c.mu.Lock()
	k, ok := c.pending[corr]
	if ok {
		delete(c.pending, corr)
		c.npending.Add(-1)
	}
	c.mu.Unlock()
	if !ok {
		return c.Conn.Write(p)
	}
	fixed := fixResponse(k, p)
	if _, err := c.Conn.Write(fixed); err != nil {
		return 0, err
	}
	return len(p), nil
}

// fixResponse returns the response frame (size, correlation id, tagged
// header, body) with kfake's null arrays made empty, or frame itself when
// nothing needs fixing or it does not parse.
func fixResponse(k reqKind, frame []byte) []byte {
	var resp kmsg.Response
	switch kmsg.Key(k.key) {
	case kmsg.DescribeTopicPartitions:
		resp = kmsg.NewPtrDescribeTopicPartitionsResponse()
	case kmsg.CreateTopics:
		resp = kmsg.NewPtrCreateTopicsResponse()
	default:
		return frame
	}
	resp.SetVersion(k.version)
	hdrEnd := 8
	if resp.IsFlexible() {
		n, ok := skipTags(frame[8:])
		if !ok {
			return frame
		}
		hdrEnd += n
	}
	if err := resp.ReadFrom(frame[hdrEnd:]); err != nil {
		return frame
	}
	changed := false
	switch r := resp.(type) {
	case *kmsg.DescribeTopicPartitionsResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				p := &r.Topics[i].Partitions[j]
				if p.EligibleLeaderReplicas == nil {
					p.EligibleLeaderReplicas, changed = []int32{}, true
				}
				if p.LastKnownELR == nil {
					p.LastKnownELR, changed = []int32{}, true
				}
			}
		}
	case *kmsg.CreateTopicsResponse:
		for i := range r.Topics {
			t := &r.Topics[i]
			if t.ErrorCode == 0 && t.ConfigErrorCode == 0 && t.Configs == nil {
				t.Configs, changed = []kmsg.CreateTopicsResponseTopicConfig{}, true
			}
		}
	}
	if !changed {
		return frame
	}
	out := append(make([]byte, 0, len(frame)+64), frame[:hdrEnd]...)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[:4], uint32(len(out)-4))
	return out
}

// Group states and types as kfake spells them (and Kafka prints them); a
// real broker matches the ListGroups filters against them ignoring case.
var (
	groupStates = []string{"Empty", "Stable", "PreparingRebalance", "CompletingRebalance", "Dead", "Assigning", "Reconciling", "NotReady", "Unknown"}
	groupTypes  = []string{"classic", "consumer", "share", "streams"}
)

// fixListGroupsRequest returns the ListGroups request frame with its states
// and types filters in kfake's spelling, or frame itself when they already
// are or it does not parse.
func fixListGroupsRequest(frame []byte) []byte {
	req := kmsg.NewPtrListGroupsRequest()
	req.SetVersion(int16(binary.BigEndian.Uint16(frame[6:8])))
	corr := int32(binary.BigEndian.Uint32(frame[8:12]))
	// Request header v1/v2: nullable client id (int16 length), then tags
	// when flexible.
	rest := frame[12:]
	if len(rest) < 2 {
		return frame
	}
	var clientID *string
	if n := int16(binary.BigEndian.Uint16(rest)); n >= 0 {
		if len(rest) < 2+int(n) {
			return frame
		}
		id := string(rest[2 : 2+n])
		clientID = &id
		rest = rest[2+n:]
	} else {
		rest = rest[2:]
	}
	if req.IsFlexible() {
		n, ok := skipTags(rest)
		if !ok {
			return frame
		}
		rest = rest[n:]
	}
	if err := req.ReadFrom(rest); err != nil {
		return frame
	}
	changed := canonical(req.StatesFilter, groupStates)
	changed = canonical(req.TypesFilter, groupTypes) || changed
	if !changed {
		return frame
	}
	var opts []kmsg.RequestFormatterOpt
	if clientID != nil {
		opts = append(opts, kmsg.FormatterClientID(*clientID))
	}
	out := kmsg.NewRequestFormatter(opts...).AppendRequest(nil, req, corr)
	binary.BigEndian.PutUint32(out[:4], uint32(len(out)-4))
	return out
}

// canonical respells each of names that equals one of known ignoring case as
// known spells it, and reports whether it changed any.
func canonical(names, known []string) bool {
	changed := false
	for i, n := range names {
		for _, k := range known {
			if n != k && strings.EqualFold(n, k) {
				names[i], changed = k, true
				break
			}
		}
	}
	return changed
}

// skipTags returns the length of the tagged-field section at the start of b
// (an unsigned-varint count, then per field a varint tag, a varint size and
// the bytes).
func skipTags(b []byte) (int, bool) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, false
	}
	off := n
	for ; count > 0; count-- {
		_, n = binary.Uvarint(b[off:])
		if n <= 0 {
			return 0, false
		}
		off += n
		size, n := binary.Uvarint(b[off:])
		if n <= 0 || size > uint64(len(b)-off-n) {
			return 0, false
		}
		off += n + int(size)
	}
	return off, true
}
