package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domainflow/domainflow/schemas"
)

// Topic names shared by the stages (ARCHITECTURE.md, "Flow").
const (
	TopicRaw          = "docs.raw"
	TopicFeatures     = "docs.features"
	TopicDeadLetter   = "docs.deadletter"
	TopicRouterModels = "router.models"
	// TopicNovel carries the rows the routing stage parks while growth is
	// on: novel rows, and rows of grown domains on their way to them (one
	// partition: the mover reads it in one order).
	TopicNovel = "docs.novel"
	// DomainTopicPrefix + domain id is the topic of one domain's documents.
	DomainTopicPrefix = "docs.domain."
)

// DomainTopic returns the topic that carries domain d's documents.
func DomainTopic(d int) string { return fmt.Sprintf("%s%d", DomainTopicPrefix, d) }

// ParseDomainTopic returns the domain id of a topic that DomainTopic names:
// ok is true only when name is exactly DomainTopic(d) for some d >= 0, so
// "docs.domain.007", "docs.domain.-1" and "docs.domain.+7" are not domain
// topics. Whether d is a domain of the router is the caller's question.
func ParseDomainTopic(name string) (d int, ok bool) {
	s, found := strings.CutPrefix(name, DomainTopicPrefix)
	if !found {
		return 0, false
	}
	d, err := strconv.Atoi(s)
	if err != nil || d < 0 || DomainTopic(d) != name {
		return 0, false
	}
	return d, true
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int // default 4
	Replicas   int // default 1
	// Configs of the topic, e.g. retention.ms, cleanup.policy=compact.
	// Default max.message.bytes: schemas.MaxMessageBytes, the limit every
	// size limit of the pipeline is derived from (see schemas.MaxLineBytes).
	Configs map[string]string
}

// TopicInfo describes an existing topic.
type TopicInfo struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
}

// EnsureTopics creates the topics that do not exist yet and waits until the
// cluster reports each of them. Existing topics are left as they are: a
// message too large for one of them is dead-lettered as oversize (see
// WriteSplitting).
func EnsureTopics(ctx context.Context, cc ClientConfig, specs ...TopicSpec) error {
	_, err := ensureTopics(ctx, cc, specs)
	return err
}

// TopicResult is what CreateTopics did with one topic.
type TopicResult struct {
	// TopicInfo is the topic as the cluster reports it afterwards: an
	// existing topic's own partition count, not the spec's.
	TopicInfo
	// Existed reports that the topic existed already and was left as it
	// was (partitions and configs).
	Existed bool
}

// CreateTopics is EnsureTopics reporting each topic of specs, in order:
// whether it existed already and its partition count as the cluster reports
// it. A spec asking another partition count than an existing topic has is
// not an error here; the caller decides.
func CreateTopics(ctx context.Context, cc ClientConfig, specs ...TopicSpec) ([]TopicResult, error) {
	existed, err := ensureTopics(ctx, cc, specs)
	if err != nil {
		return nil, err
	}
	out := make([]TopicResult, len(specs))
	for i, s := range specs {
		n, err := PartitionCount(ctx, cc, s.Name)
		if err != nil {
			return nil, err
		}
		out[i] = TopicResult{TopicInfo: TopicInfo{Name: s.Name, Partitions: n}, Existed: existed[s.Name]}
	}
	return out, nil
}

// ensureTopics is EnsureTopics; it returns the topics that existed already.
func ensureTopics(ctx context.Context, cc ClientConfig, specs []TopicSpec) (map[string]bool, error) {
	if err := cc.validate(); err != nil {
		return nil, fmt.Errorf("ensure topics: %w", err)
	}
	if len(specs) == 0 {
		return nil, nil
	}
	cl := cc.Client()
	defer CloseClient(cl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	errs, err := createTopics(cctx, cl, specs, true)
	if err != nil {
		return nil, err
	}
	// A cluster whose policy caps max.message.bytes (some managed Kafka
	// services do) refuses our default; such a topic gets the cluster's.
	var capped []TopicSpec
	for _, s := range specs {
		if _, own := s.Configs["max.message.bytes"]; !own && (errors.Is(errs[s.Name], kafka.InvalidConfiguration) || errors.Is(errs[s.Name], kafka.PolicyViolation)) {
			capped = append(capped, s)
			delete(errs, s.Name)
		}
	}
	if len(capped) > 0 {
		again, err := createTopics(cctx, cl, capped, false)
		if err != nil {
			return nil, err
		}
		maps.Copy(errs, again)
	}
	existed := map[string]bool{}
	for name, terr := range errs {
		switch {
		case errors.Is(terr, kafka.TopicAlreadyExists):
			existed[name] = true
		case terr != nil:
			return nil, fmt.Errorf("create topic %s: %w", name, terr)
		}
	}
	// Wait until metadata shows every topic with a leader on each partition.
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return existed, waitTopics(cctx, cl, names)
}

// createTopics sends one CreateTopics request for specs, with
// max.message.bytes = schemas.MaxMessageBytes unless a spec sets its own or
// maxBytes is false, and returns the error of each topic.
func createTopics(ctx context.Context, cl *kafka.Client, specs []TopicSpec, maxBytes bool) (map[string]error, error) {
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{
			Topic:             s.Name,
			NumPartitions:     orInt(s.Partitions, 4),
			ReplicationFactor: orInt(s.Replicas, 1),
		}
		configs := map[string]string{}
		if maxBytes {
			configs["max.message.bytes"] = strconv.Itoa(schemas.MaxMessageBytes)
		}
		maps.Copy(configs, s.Configs)
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	res, err := cl.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	return res.Errors, nil
}

func waitTopics(ctx context.Context, cl *kafka.Client, names []string) error {
	for {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && topicsReady(md, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("wait for topics %v: %w", names, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func topicsReady(md *kafka.MetadataResponse, names []string) bool {
	ready := map[string]bool{}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			continue
		}
		ok := true
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				ok = false
			}
		}
		ready[t.Name] = ok
	}
	for _, n := range names {
		if !ready[n] {
			return false
		}
	}
	return true
}

// ListTopics returns every non-internal topic with its partition count,
// sorted by name.
func ListTopics(ctx context.Context, cc ClientConfig) ([]TopicInfo, error) {
	if err := cc.validate(); err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl := cc.Client()
	defer CloseClient(cl)
	md, err := cl.Metadata(cctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []TopicInfo
	for _, t := range md.Topics {
		if t.Internal || t.Error != nil {
			continue
		}
		out = append(out, TopicInfo{Name: t.Name, Partitions: len(t.Partitions)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, cc ClientConfig, topic string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl := cc.Client()
	defer CloseClient(cl)
	md, err := cl.Metadata(cctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("metadata of %s: topic not found: %w", topic, kafka.UnknownTopicOrPartition)
}

// ReadTopic reads the messages of topic from the first offset of each
// partition up to its end offset at the time of the call, without a consumer
// group: partition 0 first, each in offset order. max > 0 stops after that
// many messages, taken evenly from the partitions (a sample of the head of
// the topic).
func ReadTopic(ctx context.Context, cc ClientConfig, topic string, max int) ([]kafka.Message, error) {
	n, err := PartitionCount(ctx, cc, topic)
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for p := range n {
		limit := 0
		if max > 0 {
			limit = (max - len(out) + (n - p - 1)) / (n - p) // what is left, spread over the partitions left
			if limit == 0 {
				continue
			}
		}
		ms, err := readPartition(ctx, cc, topic, p, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

func readPartition(ctx context.Context, cc ClientConfig, topic string, p, limit int) ([]kafka.Message, error) {
	conn, err := cc.Dialer().DialLeader(ctx, "tcp", cc.Brokers[0], topic, p)
	if err != nil {
		return nil, fmt.Errorf("dial leader of %s/%d: %w", topic, p, err)
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
	}
	if limit > 0 && last-first > int64(limit) {
		last = first + int64(limit)
	}
	if last <= first {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cc.Brokers, Topic: topic, Partition: p, Dialer: cc.Dialer(),
		MinBytes: 1, MaxBytes: schemas.MaxMessageBytes, MaxWait: 50 * time.Millisecond, // as the broker's message.max.bytes: with 80 MiB, reads of an 11 MB message from the embedded broker stalled
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, err
	}
	out := make([]kafka.Message, 0, last-first)
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := r.FetchMessage(rctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read %s/%d at %d of %d: %w", topic, p, len(out), last-first, err)
		}
		out = append(out, m)
		if m.Offset+1 >= last {
			return out, nil
		}
	}
}
