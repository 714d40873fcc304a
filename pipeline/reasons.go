package pipeline

import "github.com/domainflow/domainflow/schemas"

// ReasonImpossibleOrigin is the dead-letter reason of a row that claims an
// origin that cannot exist (beyond the end of its partition, a partition or
// topic that is not there; see OriginChecker): a forged or corrupted row.
// The routing stage and the training consumers both dead-letter such rows,
// and neither imports the other, so the reason lives here.
const ReasonImpossibleOrigin schemas.Reason = "impossible-origin"
