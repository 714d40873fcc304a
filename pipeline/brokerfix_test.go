package pipeline_test

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// kafkaRoundTrip sends one request to addr on a new connection and decodes
// its response, as a Kafka client would.
func kafkaRoundTrip(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const corr = 7
	if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("brokerfix-test")).AppendRequest(nil, req, corr)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("%s v%d: read response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	body = body[4:]
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		if body[0] != 0 { // no tagged fields in the response header
			t.Fatalf("response header has %d tagged fields", body[0])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// TestBrokerJavaClientAnswers checks on the wire the answers of the embedded
// broker that Apache Kafka's Java admin client (kafka-topics,
// kafka-consumer-groups) needs and kfake alone gets wrong (brokerfix.go):
// arrays the Java client reads without a null check are empty, not null, and
// ListGroups filters ignore case. kmsg decodes a null array as nil and an
// empty one as non-nil, so the checks see the wire.
func TestBrokerJavaClientAnswers(t *testing.T) {
	addr := pipetest.Broker(t).Addr()
	const topic, group = "brokerfix", "brokerfix-group"

	// kafka-topics --create: CreateTopics v7 without configs.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ct.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, 1
	ct.Topics = append(ct.Topics, rt)
	ctr := kafkaRoundTrip(t, addr, ct).(*kmsg.CreateTopicsResponse)
	if len(ctr.Topics) != 1 || ctr.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %+v", ctr.Topics)
	}
	if ctr.Topics[0].Configs == nil {
		t.Errorf("CreateTopics v7: Configs of a created topic is null, want an array (Java: NPE \"configs is null\")")
	}

	// kafka-topics --describe, kafka-consumer-groups --describe and
	// --reset-offsets: DescribeTopicPartitions v0.
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.ResponsePartitionLimit = 2000
	rdt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rdt.Topic = topic
	dtp.Topics = append(dtp.Topics, rdt)
	dtr := kafkaRoundTrip(t, addr, dtp).(*kmsg.DescribeTopicPartitionsResponse)
	if len(dtr.Topics) != 1 || dtr.Topics[0].ErrorCode != 0 || len(dtr.Topics[0].Partitions) != 3 {
		t.Fatalf("DescribeTopicPartitions: %+v", dtr.Topics)
	}
	for _, p := range dtr.Topics[0].Partitions {
		if p.EligibleLeaderReplicas == nil || p.LastKnownELR == nil {
			t.Errorf("DescribeTopicPartitions partition %d: EligibleLeaderReplicas %v, LastKnownELR %v: null, want empty arrays (Java: NPE on eligibleLeaderReplicas)",
				p.Partition, p.EligibleLeaderReplicas, p.LastKnownELR)
		}
		if len(p.ISR) != 1 || len(p.Replicas) != 1 {
			t.Errorf("DescribeTopicPartitions partition %d: replicas %v, ISR %v lost in the rewrite", p.Partition, p.Replicas, p.ISR)
		}
	}

	// A group with a committed offset and no members (state Empty), as a
	// stopped stage leaves it.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 7
	oc.Group, oc.Generation = group, -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	ocr := kafkaRoundTrip(t, addr, oc).(*kmsg.OffsetCommitResponse)
	if len(ocr.Topics) != 1 || ocr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetCommit: %+v", ocr.Topics)
	}

	// kafka-consumer-groups --list (4.x sends the types capitalized) and
	// --list --state.
	for _, tt := range []struct {
		name          string
		states, types []string
		want          bool
	}{
		{"no filter", nil, nil, true},
		{"4.x types", nil, []string{"Classic", "Consumer"}, true},
		{"state in upper case", []string{"EMPTY"}, nil, true},
		{"state and type", []string{"empty"}, []string{"CLASSIC"}, true},
		{"other state", []string{"Stable"}, nil, false},
		{"other type", nil, []string{"Share"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lg := kmsg.NewPtrListGroupsRequest()
			lg.Version = 5
			lg.StatesFilter, lg.TypesFilter = tt.states, tt.types
			lgr := kafkaRoundTrip(t, addr, lg).(*kmsg.ListGroupsResponse)
			got := slices.ContainsFunc(lgr.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return g.Group == group })
			if got != tt.want {
				t.Errorf("ListGroups v5 states %q types %q: group listed %v, want %v (groups %+v)", tt.states, tt.types, got, tt.want, lgr.Groups)
			}
		})
	}
}
