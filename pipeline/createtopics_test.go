package pipeline_test

import (
	"context"
	"slices"
	"testing"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// TestCreateTopics: CreateTopics reports each topic as the cluster has it:
// a new one with the spec's partitions, an existing one left with its own
// and marked Existed.
func TestCreateTopics(t *testing.T) {
	ctx := context.Background()
	cc := pipetest.Broker(t).Client()
	if err := pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: "old", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.CreateTopics(ctx, cc, pipeline.TopicSpec{Name: "old", Partitions: 8}, pipeline.TopicSpec{Name: "new", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.TopicResult{
		{TopicInfo: pipeline.TopicInfo{Name: "old", Partitions: 2}, Existed: true},
		{TopicInfo: pipeline.TopicInfo{Name: "new", Partitions: 3}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("CreateTopics = %+v, want %+v", got, want)
	}
}
