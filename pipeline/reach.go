package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// CheckBrokers dials every broker until one accepts a TCP connection, then
// asks it for metadata (which also proves TLS and SASL settings), all within
// timeout. Its error tells three failures apart, since each has its own
// remedy: no broker accepts a connection (a wrong address, or none running);
// one accepts but never answers within timeout (a broker that is stopped,
// e.g. SIGSTOP, or overloaded: the kernel accepts connections for a process
// that does not run); one answers with a protocol error at once (what a TLS
// or SASL setting that does not match the listener looks like). The
// remedies name the flags of process.KafkaFlags.
func CheckBrokers(ctx context.Context, cc ClientConfig, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		d       net.Dialer
		dialErr error
		ok      bool
	)
	for _, b := range cc.Brokers {
		conn, err := d.DialContext(cctx, "tcp", b)
		if err == nil {
			conn.Close()
			ok = true
			break
		}
		dialErr = err
	}
	list := strings.Join(cc.Brokers, ",")
	if !ok {
		if dialErr == nil {
			dialErr = cctx.Err()
		}
		return fmt.Errorf("broker %s unreachable: %w", list, dialErr)
	}
	cl := cc.Client()
	defer CloseClient(cl)
	_, err := cl.Metadata(cctx, &kafka.MetadataRequest{})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil: // the caller is stopping
		return err
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("broker %s accepts connections but does not answer: no reply to a metadata request within %v; "+
			"it may be stopped (e.g. SIGSTOP) or overloaded; if it is a TLS or SASL listener, check --tls and --sasl-*: %w", list, timeout, err)
	}
	return fmt.Errorf("broker %s accepts connections but a metadata request failed at once, as it does when the client's "+
		"TLS or SASL settings do not match the listener: check --tls, --tls-* and --sasl-*: %w", list, err)
}
