package pipeline

import (
	"errors"

	"github.com/segmentio/kafka-go"
)

// IsUnknownTopic reports whether err says that a topic (or partition) does
// not exist, as ReadTopic and PartitionCount answer for a topic nobody
// created yet; a caller that samples or reads ahead of the producers treats
// it as an empty topic.
func IsUnknownTopic(err error) bool { return errors.Is(err, kafka.UnknownTopicOrPartition) }
