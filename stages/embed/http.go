package embed

// The http featurizer: a client for an embedding service speaking the common
// OpenAI-style /v1/embeddings JSON API (OpenAI, vLLM, text-embeddings-inference,
// llama.cpp server, Ollama's OpenAI endpoint, LiteLLM, ...).

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ErrTransient marks a failure that may succeed when tried again later: on
// every attempt the service timed out, could not be reached, or answered 408,
// 429 or 5xx. Once retries are exhausted the error of Transform wraps it, so
// errors.Is(err, ErrTransient) tells a caller to retry the batch later. Any
// other error of Transform, except the caller's own cancelled context, is
// permanent: the same request would fail the same way.
var ErrTransient = errors.New("embed: http: transient failure")

// StatusError is a non-2xx answer of the embedding service. Transform returns
// it as is when the status is permanent (4xx other than 408 and 429), and
// wrapped together with ErrTransient when retries of a transient status ran
// out; errors.As finds it in both cases.
type StatusError struct {
	URL        string        // the endpoint, credentials redacted
	StatusCode int           // e.g. 400
	Status     string        // e.g. "400 Bad Request"
	Body       string        // the first 200 bytes of the body, trimmed
	RetryAfter time.Duration // the Retry-After of a 429 or 503; 0 when absent
}

func (e *StatusError) Error() string {
	s := "embed: http: POST " + e.URL + ": " + e.Status
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Temporary reports whether the request is worth repeating: 408, 429 and 5xx.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode/100 == 5
}

// httpExhaustedError is the last error of a request whose retries ran out on
// transient failures. It unwraps to ErrTransient and to that last error.
type httpExhaustedError struct {
	attempts int
	err      error
}

func (e *httpExhaustedError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.attempts)
}
func (e *httpExhaustedError) Unwrap() []error { return []error{ErrTransient, e.err} }

// Temporary is true: trying the request again later may succeed.
func (e *httpExhaustedError) Temporary() bool { return true }

// HTTPConfig configures an HTTPEmbedder. The zero value of every field but
// URL works; each field's doc ends with its default.
type HTTPConfig struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:8080. Requests go
	// to URL + "/v1/embeddings"; a URL whose path already ends with
	// /embeddings is used as is, and one ending with /v1 (the OpenAI client's
	// "base_url" convention) gets /embeddings appended. Required.
	URL string
	// Model is sent as "model"; omitted from the request when empty (servers
	// that host one model do not need it). Default "".
	Model string
	// APIKey is sent as "Authorization: Bearer APIKey" when set. Default "".
	APIKey string
	// Dims is the expected dimension; every embedding must have it. 0 learns
	// it from the first response and enforces it from then on. Default 0.
	Dims int
	// BatchSize is the number of texts per request. Default 64.
	BatchSize int
	// Concurrency bounds the requests in flight, over all Transform calls on
	// one embedder together. Default 4.
	Concurrency int
	// Timeout bounds each attempt of a request, from sending it to reading
	// the whole response. Default 30s.
	Timeout time.Duration
	// Retries is how many times a request is repeated after a transport
	// error, a timeout, 408, 429 or 5xx. The n-th retry waits a random time
	// between d/2 and d, d = min(200ms·2ⁿ, 10s), or longer when a 429 or 503
	// carries Retry-After (honoured up to one minute). Negative disables
	// retries. Default 4.
	Retries int
	// MaxTextBytes is the longest text sent, in bytes: a longer one is cut at
	// the last UTF-8 character boundary at or before it (services reject
	// inputs over their context length). Negative disables the cut. Default
	// 32 KiB.
	MaxTextBytes int
	// Normalize scales every returned vector to unit L2 norm. The embed
	// stage sets it; default false.
	Normalize bool
	// Base64 asks for "encoding_format": "base64" (little-endian float32,
	// about a third of the bytes of JSON numbers) instead of "float".
	// Responses in either format are accepted regardless. Default false.
	Base64 bool
	// Client sends the requests. Default: a client with keep-alive
	// connections, at least Concurrency of them idle per host, proxies from
	// the environment, and no overall timeout (Timeout bounds each attempt).
	Client *http.Client
	// UserAgent is sent as User-Agent. Default "domainflow".
	UserAgent string
}

// Defaults of HTTPConfig.
const (
	httpDefaultBatchSize    = 64
	httpDefaultConcurrency  = 4
	httpDefaultTimeout      = 30 * time.Second
	httpDefaultRetries      = 4
	httpDefaultMaxTextBytes = 32 << 10
	httpDefaultUserAgent    = "domainflow"

	httpBackoffBase   = 200 * time.Millisecond
	httpBackoffMax    = 10 * time.Second
	httpRetryAfterMax = time.Minute
	httpMaxResponse   = 256 << 20 // bytes of one response body
	httpErrorSnippet  = 200       // bytes of an error body quoted in errors
)

// HTTPEmbedder is the http featurizer: it embeds texts with a service
// speaking the OpenAI-style /v1/embeddings API and returns dense rows.
//
// Transform cuts the texts into requests of BatchSize, sends up to
// Concurrency of them at once and puts the embeddings back in input order,
// whatever the order of the response's "data" (by its "index"). Each request
// is retried on transport errors, timeouts, 408, 429 and 5xx; when retries
// run out the error wraps ErrTransient. Every other failure is permanent and
// names the problem: a 4xx status (a *StatusError, with the start of the
// body), malformed JSON, a wrong number of embeddings, an index out of range
// or repeated, a wrong dimension, an empty embedding, or a NaN or infinite
// value. The first failing request cancels the others of the same call.
//
// The dimension is Dims, or when Dims is 0 that of the first embedding the
// service returns; Dim reports 0 until then. An HTTPEmbedder is safe for
// concurrent use.
type HTTPEmbedder struct {
	cfg      HTTPConfig    // with defaults filled in; URL as given
	endpoint string        // where requests go
	redacted string        // endpoint without credentials, for errors
	dim      atomic.Int64  // the enforced dimension; 0 until known
	sem      chan struct{} // one token per request in flight

	// Knobs for tests.
	backoffBase   time.Duration
	backoffMax    time.Duration
	retryAfterMax time.Duration
	sleep         func(ctx context.Context, d time.Duration) error
}

// NewHTTPEmbedder checks cfg, fills in its defaults and returns the client.
// It sends nothing: a service that is down shows up at the first Transform.
func NewHTTPEmbedder(cfg HTTPConfig) (*HTTPEmbedder, error) {
	if cfg.URL == "" {
		return nil, errors.New("embed: http: URL is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("embed: http: URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("embed: http: URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("embed: http: URL %q has no host", u.Redacted())
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"Dims", int64(cfg.Dims)},
		{"BatchSize", int64(cfg.BatchSize)},
		{"Concurrency", int64(cfg.Concurrency)},
		{"Timeout", int64(cfg.Timeout)},
	} {
		if c.v < 0 {
			return nil, fmt.Errorf("embed: http: %s must not be negative (0 picks the default), got %d", c.name, c.v)
		}
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = httpDefaultBatchSize
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = httpDefaultConcurrency
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = httpDefaultTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = httpDefaultRetries
	}
	if cfg.MaxTextBytes == 0 {
		cfg.MaxTextBytes = httpDefaultMaxTextBytes
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = httpDefaultUserAgent
	}
	if cfg.Client == nil {
		cfg.Client = httpDefaultClient(cfg.Concurrency)
	}

	p := strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/embeddings"):
	case strings.HasSuffix(p, "/v1"):
		p += "/embeddings"
	default:
		p += "/v1/embeddings"
	}
	u.Path, u.RawPath, u.Fragment, u.RawFragment = p, "", "", ""

	e := &HTTPEmbedder{
		cfg:           cfg,
		endpoint:      u.String(),
		redacted:      u.Redacted(),
		sem:           make(chan struct{}, cfg.Concurrency),
		backoffBase:   httpBackoffBase,
		backoffMax:    httpBackoffMax,
		retryAfterMax: httpRetryAfterMax,
		sleep:         httpSleep,
	}
	e.dim.Store(int64(cfg.Dims))
	return e, nil
}

// httpDefaultClient returns a client whose transport keeps enough idle
// connections for conc requests in flight to one host.
func httpDefaultClient(conc int) *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, MaxIdleConns: 100,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	} else {
		t = t.Clone()
	}
	t.MaxIdleConnsPerHost = max(conc, 2)
	return &http.Client{Transport: t}
}

// Dim is the dimension of the embeddings: Dims, or the one learned from the
// first response; 0 until known.
func (e *HTTPEmbedder) Dim() int { return int(e.dim.Load()) }

// Kind is KindHTTP.
func (e *HTTPEmbedder) Kind() Kind { return KindHTTP }

// Transform embeds texts and returns one dense row per text, in input order.
// Zero texts give an empty matrix without a request. It returns when every
// request is answered, the first one fails, or ctx ends (then with an error
// wrapping ctx's cause).
func (e *HTTPEmbedder) Transform(ctx context.Context, texts []string) (Vectors, error) {
	n := len(texts)
	if n == 0 {
		return Vectors{Dense: &Dense{Cols: e.Dim()}}, nil
	}
	if ctx.Err() != nil {
		return Vectors{}, fmt.Errorf("embed: http: %w", context.Cause(ctx))
	}
	bs := e.cfg.BatchSize
	nb := (n + bs - 1) / bs
	results := make([][]float32, nb)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64 // the next batch to send
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	// Workers end when the batches run out or ctx ends; Transform waits for
	// all of them. Concurrency is enforced by e.sem, shared by all calls;
	// the worker count only avoids idle goroutines.
	for range min(e.cfg.Concurrency, nb) {
		wg.Go(func() {
			for ctx.Err() == nil {
				b := int(next.Add(1)) - 1
				if b >= nb {
					return
				}
				lo := b * bs
				v, err := e.embedBatch(ctx, texts[lo:min(lo+bs, n)], lo)
				if err != nil {
					once.Do(func() { firstErr = err; cancel(err) })
					return
				}
				results[b] = v
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return Vectors{}, firstErr
	}
	dim := e.Dim()
	out := NewDense(n, dim)
	for b, v := range results {
		copy(out.Data[b*bs*dim:], v)
	}
	return Vectors{Dense: out}, nil
}

// embedBatch sends one request for texts (the inputs offset.. of the call)
// and retries it on transient failures. It returns the rows, flat.
func (e *HTTPEmbedder) embedBatch(ctx context.Context, texts []string, offset int) ([]float32, error) {
	body, err := e.encodeRequest(texts)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		v, retryAfter, err := e.post(ctx, body, len(texts), offset)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("embed: http: %w", context.Cause(ctx))
		}
		if !httpRetryable(err) {
			return nil, err
		}
		if attempt >= e.cfg.Retries {
			return nil, &httpExhaustedError{attempts: attempt + 1, err: err}
		}
		wait := max(e.backoff(attempt), min(retryAfter, e.retryAfterMax))
		slog.Debug("embed: http: retrying", "url", e.redacted, "attempt", attempt+1, "wait", wait, "err", err)
		if err := e.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("embed: http: %w", context.Cause(ctx))
		}
	}
}

// httpRequest is the body of a request.
type httpRequest struct {
	Model          string   `json:"model,omitempty"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

// httpResponse is the part of a response the client reads.
type httpResponse struct {
	Data []struct {
		Index     *int            `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Error json.RawMessage `json:"error"`
}

func (e *HTTPEmbedder) encodeRequest(texts []string) ([]byte, error) {
	req := httpRequest{Model: e.cfg.Model, Input: texts, EncodingFormat: "float"}
	if e.cfg.Base64 {
		req.EncodingFormat = "base64"
	}
	if e.cfg.MaxTextBytes > 0 {
		copied := false
		for i, t := range texts {
			if len(t) > e.cfg.MaxTextBytes {
				if !copied { // never write to the caller's slice
					req.Input, copied = append([]string(nil), texts...), true
				}
				req.Input[i] = httpTruncate(t, e.cfg.MaxTextBytes)
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("embed: http: encode request: %w", err)
	}
	return buf.Bytes(), nil
}

// httpTruncate cuts s to at most limit bytes, at a UTF-8 character boundary.
// A negative limit keeps s whole.
func httpTruncate(s string, limit int) string {
	if limit < 0 || len(s) <= limit {
		return s
	}
	i := limit
	// A character is at most utf8.UTFMax bytes; past that s is not valid
	// UTF-8 here and any cut is as good as another.
	for k := 0; k < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); k++ {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = limit
	}
	return s[:i]
}

// httpTransportError is a failure to get a complete response: worth a retry.
type httpTransportError struct{ err error }

func (e *httpTransportError) Error() string { return e.err.Error() }
func (e *httpTransportError) Unwrap() error { return e.err }

// httpRetryable reports whether err of one attempt is worth another.
func httpRetryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	var te *httpTransportError
	return errors.As(err, &te)
}

// post makes one attempt: it sends body, waits at most Timeout for the whole
// response and decodes it. On a 429 or 503 it also returns the Retry-After.
func (e *HTTPEmbedder) post(ctx context.Context, body []byte, n, offset int) ([]float32, time.Duration, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, context.Cause(ctx)
	}
	defer func() { <-e.sem }()

	actx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("embed: http: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", e.cfg.UserAgent)
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, e.transportError(ctx, actx, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode/100 != 2 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, httpErrorSnippet))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
		se := &StatusError{URL: e.redacted, StatusCode: resp.StatusCode, Status: resp.Status,
			Body: strings.TrimSpace(strings.ToValidUTF8(string(snippet), ""))}
		if se.Status == "" {
			se.Status = strconv.Itoa(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			se.RetryAfter = httpRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return nil, se.RetryAfter, se
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, httpMaxResponse+1))
	if err != nil {
		return nil, 0, e.transportError(ctx, actx, err)
	}
	if len(raw) > httpMaxResponse {
		return nil, 0, fmt.Errorf("embed: http: POST %s: response larger than %d bytes", e.redacted, httpMaxResponse)
	}
	v, err := e.decode(raw, n, offset)
	return v, 0, err
}

// transportError describes err from sending a request or reading its
// response. A certificate that does not verify is permanent; anything else
// (refused, reset, timed out, cut short) is transient.
func (e *HTTPEmbedder) transportError(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return fmt.Errorf("embed: http: POST %s: %w", e.redacted, err)
	}
	if actx.Err() != nil {
		err = fmt.Errorf("no complete response within %v: %w", e.cfg.Timeout, context.DeadlineExceeded)
	}
	return &httpTransportError{fmt.Errorf("embed: http: POST %s: %w", e.redacted, err)}
}

// decode checks a 2xx response for the inputs offset..offset+n-1 and returns
// the n embeddings as rows of a flat slice, ordered by "index".
func (e *HTTPEmbedder) decode(raw []byte, n, offset int) ([]float32, error) {
	var r httpResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("embed: http: POST %s: malformed response: %w", e.redacted, err)
	}
	if len(r.Data) == 0 && len(r.Error) > 0 && string(r.Error) != "null" {
		msg := strings.ToValidUTF8(string(r.Error[:min(len(r.Error), httpErrorSnippet)]), "")
		return nil, fmt.Errorf("embed: http: POST %s: service answered with an error: %s", e.redacted, msg)
	}
	if len(r.Data) != n {
		return nil, fmt.Errorf("embed: http: service returned %d embeddings for %d inputs", len(r.Data), n)
	}
	var out []float32
	seen := make([]bool, n)
	dim := e.Dim()
	for pos, item := range r.Data {
		i := pos // a service that leaves out "index" answers in order
		if item.Index != nil {
			i = *item.Index
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("embed: http: service returned index %d for a request of %d inputs", i, n)
		}
		if seen[i] {
			return nil, fmt.Errorf("embed: http: service returned index %d twice", i)
		}
		seen[i] = true
		g := offset + i // the input's position in the Transform call
		v, err := httpDecodeVector(item.Embedding)
		if err != nil {
			return nil, fmt.Errorf("embed: http: embedding %d: %w", g, err)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("embed: http: embedding %d is empty", g)
		}
		if dim == 0 {
			e.dim.CompareAndSwap(0, int64(len(v)))
			dim = e.Dim()
		}
		if len(v) != dim {
			return nil, fmt.Errorf("embed: http: embedding %d has dimension %d, want %d", g, len(v), dim)
		}
		for j, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("embed: http: embedding %d has %v at position %d", g, x, j)
			}
		}
		if e.cfg.Normalize {
			normalizeL2(v)
		}
		if out == nil {
			out = make([]float32, n*dim)
		}
		copy(out[i*dim:], v)
	}
	return out, nil
}

// httpDecodeVector decodes one "embedding": an array of numbers, or a base64
// string of little-endian float32 values. Numbers beyond the float32 range
// decode to ±Inf (and are then rejected as such).
func httpDecodeVector(raw json.RawMessage) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '[':
		var f []float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("malformed: %w", err)
		}
		v := make([]float32, len(f))
		for j, x := range f {
			switch {
			case x > math.MaxFloat32:
				v[j] = float32(math.Inf(1))
			case x < -math.MaxFloat32:
				v[j] = float32(math.Inf(-1))
			default:
				v[j] = float32(x)
			}
		}
		return v, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("malformed: %w", err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			var rerr error
			if b, rerr = base64.RawStdEncoding.DecodeString(s); rerr != nil {
				return nil, fmt.Errorf("malformed base64: %w", err)
			}
		}
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("base64 payload of %d bytes is not a whole number of float32 values", len(b))
		}
		v := make([]float32, len(b)/4)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		return v, nil
	default:
		return nil, fmt.Errorf("neither an array of numbers nor a base64 string: %.40s", raw)
	}
}

// backoff is the wait before retry n (0-based): a random time in [d/2, d],
// d = min(backoffBase·2ⁿ, backoffMax).
func (e *HTTPEmbedder) backoff(n int) time.Duration {
	d := e.backoffMax
	if n < 32 {
		if s := e.backoffBase << n; s > 0 && s < d {
			d = s
		}
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// httpRetryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// Anything else, or a time in the past, is 0.
func httpRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// httpSleep waits d or until ctx ends, whichever comes first.
func httpSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// httpFactory registers KindHTTP: nothing is fitted (the client is built
// and the texts embedded), so it is not streamed; its state is its settings
// alone, without the API key, which Load takes from
// $DOMAINFLOW_EMBED_API_KEY.
var httpFactory = Factory{
	Fit: func(ctx context.Context, texts []string, opt FitOptions) (Featurizer, Vectors, error) {
		e, err := NewHTTPEmbedder(opt.HTTP)
		if err != nil {
			return nil, Vectors{}, err
		}
		v, err := e.Transform(ctx, texts)
		return e, v, err
	},
	Settings: func(f Featurizer, set *Settings) error {
		e := f.(*HTTPEmbedder)
		c := e.cfg
		set.HTTP = &HTTPSettings{URL: c.URL, Model: c.Model, Dims: e.Dim(), BatchSize: c.BatchSize, Concurrency: c.Concurrency,
			Timeout: c.Timeout, Retries: c.Retries, MaxTextBytes: c.MaxTextBytes, Normalize: c.Normalize, Base64: c.Base64}
		return nil
	},
	Load: func(set *Settings, _ StateTable) (Featurizer, error) {
		h := set.HTTP
		if h == nil {
			return nil, errors.New("http state without settings")
		}
		return NewHTTPEmbedder(HTTPConfig{URL: h.URL, Model: h.Model, Dims: h.Dims, BatchSize: h.BatchSize, Concurrency: h.Concurrency,
			Timeout: h.Timeout, Retries: h.Retries, MaxTextBytes: h.MaxTextBytes, Normalize: h.Normalize, Base64: h.Base64, APIKey: os.Getenv("DOMAINFLOW_EMBED_API_KEY")})
	},
}
