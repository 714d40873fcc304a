package pipeline

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// trickleConn is a net.Conn whose Read returns one byte at a time from in
// and whose Write collects into out: the worst framing a socket can give.
type trickleConn struct {
	net.Conn
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *trickleConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.in.Read(p[:1])
}

func (c *trickleConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// readFrame reads one request as kfake does: a 4-byte size, then the body.
func readFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		t.Fatalf("read size: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return append(size[:], body...)
}

// responseFrame is a response as kfake writes it: size, correlation id, an
// empty tag section when flexible, the body.
func responseFrame(corr int32, resp kmsg.Response) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 4), uint32(corr))
	if resp.IsFlexible() {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// TestFixConnFraming feeds fixConn requests one byte at a time: frames it
// does not rewrite reach kfake byte for byte, a ListGroups filter is
// respelled, and only the responses of tracked requests are patched.
func TestFixConnFraming(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 5
	lg.TypesFilter = []string{"Classic", "consumer"}
	lg.StatesFilter = []string{"STABLE"}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = "t"
	dtp.Topics = append(dtp.Topics, rt)

	metaFrame := f.AppendRequest(nil, meta, 1)
	dtpFrame := f.AppendRequest(nil, dtp, 3)
	var in []byte
	in = append(in, metaFrame...)
	in = append(in, f.AppendRequest(nil, lg, 2)...)
	in = append(in, dtpFrame...)
	raw := &trickleConn{in: bytes.NewReader(in)}
	c := &fixConn{Conn: raw}

	if got := readFrame(t, c); !bytes.Equal(got, metaFrame) {
		t.Errorf("Metadata frame changed on the way:\n got %x\nwant %x", got, metaFrame)
	}
	got := readFrame(t, c)
	req := kmsg.NewPtrListGroupsRequest()
	req.SetVersion(5)
	// size 4, key 2, version 2, corr 4, client id "c" (2+1), tags 1.
	if corr := binary.BigEndian.Uint32(got[8:12]); corr != 2 {
		t.Errorf("ListGroups correlation id %d, want 2", corr)
	}
	if err := req.ReadFrom(got[4+2+2+4+3+1:]); err != nil {
		t.Fatalf("rewritten ListGroups does not decode: %v", err)
	}
	if want := []string{"classic", "consumer"}; !slices.Equal(req.TypesFilter, want) {
		t.Errorf("TypesFilter %q, want %q", req.TypesFilter, want)
	}
	if want := []string{"Stable"}; !slices.Equal(req.StatesFilter, want) {
		t.Errorf("StatesFilter %q, want %q", req.StatesFilter, want)
	}
	if got := readFrame(t, c); !bytes.Equal(got, dtpFrame) {
		t.Errorf("DescribeTopicPartitions frame changed on the way")
	}
	if _, err := c.Read(make([]byte, 4)); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}

	// Responses: Metadata (not tracked) passes as is; DescribeTopicPartitions
	// (correlation id 3) gets empty ELR arrays.
	metaResp := responseFrame(1, kmsg.NewPtrMetadataResponse())
	if n, err := c.Write(metaResp); err != nil || n != len(metaResp) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if !bytes.Equal(raw.out.Bytes(), metaResp) {
		t.Errorf("untracked response changed")
	}
	raw.out.Reset()
	dresp := kmsg.NewPtrDescribeTopicPartitionsResponse()
	st := kmsg.NewDescribeTopicPartitionsResponseTopic()
	st.Topic = kmsg.StringPtr("t")
	st.Partitions = append(st.Partitions, kmsg.NewDescribeTopicPartitionsResponseTopicPartition())
	dresp.Topics = append(dresp.Topics, st)
	frame := responseFrame(3, dresp)
	if n, err := c.Write(frame); err != nil || n != len(frame) {
		t.Fatalf("Write = %d, %v; want %d (the caller's length)", n, err, len(frame))
	}
	out := raw.out.Bytes()
	if size := binary.BigEndian.Uint32(out); int(size) != len(out)-4 {
		t.Fatalf("patched frame size %d, frame is %d", size, len(out)-4)
	}
	fixed := kmsg.NewPtrDescribeTopicPartitionsResponse()
	if err := fixed.ReadFrom(out[9:]); err != nil {
		t.Fatalf("patched response does not decode: %v", err)
	}
	p := fixed.Topics[0].Partitions[0]
	if p.EligibleLeaderReplicas == nil || p.LastKnownELR == nil {
		t.Errorf("patched partition: ELR %v, LastKnownELR %v still null", p.EligibleLeaderReplicas, p.LastKnownELR)
	}
	if c.npending.Load() != 0 {
		t.Errorf("%d requests still pending after their responses", c.npending.Load())
	}
}

// TestFixConnShortFrame: a frame too short to be a request switches the
// framing off and passes every byte through in order.
func TestFixConnShortFrame(t *testing.T) {
	in := []byte{0, 0, 0, 2, 'h', 'i', 0, 0, 0, 1, '!'}
	c := &fixConn{Conn: &trickleConn{in: bytes.NewReader(in)}}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, in) {
		t.Errorf("ReadAll = %q, %v; want %q", got, err, in)
	}
}
