package embed

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// httpTestItem is one element of a response's "data".
type httpTestItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// httpTestVec is the toy embedding the fake services return: the number in
// the text ("t37" → 37), its length, and 1.
func httpTestVec(text string) []float32 {
	n, _ := strconv.Atoi(strings.TrimPrefix(text, "t"))
	return []float32{float32(n), float32(len(text)), 1}
}

// httpTestTexts returns "t0", "t1", ...
func httpTestTexts(n int) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = "t" + strconv.Itoa(i)
	}
	return t
}

// httpTestBase64 encodes v as little-endian float32 in base64.
func httpTestBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// httpTestDecode reads a request body; it reports problems with t.Errorf
// (handlers run on the server's goroutines).
func httpTestDecode(t *testing.T, r *http.Request) httpRequest {
	t.Helper()
	var req httpRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("server: decode request: %v", err)
	}
	return req
}

// httpTestAnswer writes the embeddings of vec for req's inputs, in reverse
// order, in the encoding the request asked for.
func httpTestAnswer(w http.ResponseWriter, req httpRequest, vec func(string) []float32) {
	data := make([]httpTestItem, 0, len(req.Input))
	for i := len(req.Input) - 1; i >= 0; i-- {
		var emb any = vec(req.Input[i])
		if req.EncodingFormat == "base64" {
			emb = httpTestBase64(vec(req.Input[i]))
		}
		data = append(data, httpTestItem{Object: "embedding", Index: i, Embedding: emb})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": "toy",
		"usage": map[string]int{"prompt_tokens": len(req.Input), "total_tokens": len(req.Input)},
	})
}

// httpTestServer starts h and closes it when the test ends.
func httpTestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// httpTestEmbedder builds an embedder with millisecond backoffs.
func httpTestEmbedder(t *testing.T, cfg HTTPConfig) *HTTPEmbedder {
	t.Helper()
	e, err := NewHTTPEmbedder(cfg)
	if err != nil {
		t.Fatalf("NewHTTPEmbedder: %v", err)
	}
	e.backoffBase, e.backoffMax = time.Millisecond, 4*time.Millisecond
	return e
}

// httpTestWait blocks until the request is cancelled or 5 s pass. It reads
// the body first: only then does the server notice a client hanging up.
func httpTestWait(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func TestHTTPOrderAndBatching(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n, batch  int
		wantSizes []int
	}{
		{"150 by 64", 150, 64, []int{22, 64, 64}},
		{"one batch", 5, 0, []int{5}},
		{"exact", 8, 4, []int{4, 4}},
		{"batch of one", 3, 1, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sizes []int
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				req := httpTestDecode(t, r)
				mu.Lock()
				sizes = append(sizes, len(req.Input))
				mu.Unlock()
				httpTestAnswer(w, req, httpTestVec)
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, BatchSize: tc.batch})
			if d := e.Dim(); d != 0 {
				t.Fatalf("Dim() before the first response = %d, want 0", d)
			}
			texts := httpTestTexts(tc.n)
			v, err := e.Transform(context.Background(), texts)
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if v.Dense == nil || v.Sparse != nil || v.Len() != tc.n || v.Dim() != 3 || e.Dim() != 3 {
				t.Fatalf("got %d×%d dense=%v (Dim() %d), want %d×3 dense", v.Len(), v.Dim(), v.Dense != nil, e.Dim(), tc.n)
			}
			for i, text := range texts {
				if got, want := v.Dense.Row(i), httpTestVec(text); !slices.Equal(got, want) {
					t.Fatalf("row %d = %v, want %v", i, got, want)
				}
			}
			slices.Sort(sizes)
			if !slices.Equal(sizes, tc.wantSizes) {
				t.Errorf("request sizes %v, want %v", sizes, tc.wantSizes)
			}
		})
	}
}

func TestHTTPEmptyInput(t *testing.T) {
	var requests atomic.Int64
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		httpTestAnswer(w, httpTestDecode(t, r), httpTestVec)
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Dims: 3})
	v, err := e.Transform(context.Background(), nil)
	if err != nil || v.Dense == nil || v.Len() != 0 || v.Dim() != 3 {
		t.Fatalf("Transform(nil) = %d×%d dense=%v, %v; want 0×3 dense, nil", v.Len(), v.Dim(), v.Dense != nil, err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests for zero texts, want 0", n)
	}
	// An empty text is sent as it is.
	v, err = e.Transform(context.Background(), []string{"", "t1"})
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if got := v.Dense.Row(0); !slices.Equal(got, httpTestVec("")) {
		t.Errorf("row of the empty text = %v, want %v", got, httpTestVec(""))
	}
}

func TestHTTPConcurrencyLimit(t *testing.T) {
	const limit, calls, texts, batch = 3, 2, 24, 2
	const total = calls * texts / batch // requests
	var started, inflight, peak atomic.Int64
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		req := httpTestDecode(t, r)
		started.Add(1)
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		// Hold the request until the limit is reached (or every request has
		// come, or a while passed), so a client that sends too many at once
		// is caught.
		for deadline := time.Now().Add(time.Second); inflight.Load() < limit && started.Load() < total && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
		httpTestAnswer(w, req, httpTestVec)
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, BatchSize: batch, Concurrency: limit})

	// Two calls at once share the limit.
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for c := range errs {
		wg.Go(func() {
			v, err := e.Transform(context.Background(), httpTestTexts(texts))
			if err == nil && !slices.Equal(v.Dense.Row(23), httpTestVec("t23")) {
				err = fmt.Errorf("row 23 = %v", v.Dense.Row(23))
			}
			errs[c] = err
		})
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", c, err)
		}
	}
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d requests in flight, want %d", p, limit)
	}
}

func TestHTTPRequest(t *testing.T) {
	for _, tc := range []struct {
		name, suffix, key, wantPath string
		base64                      bool
	}{
		{"base URL", "", "sk-test", "/v1/embeddings", false},
		{"trailing slash", "/", "", "/v1/embeddings", false},
		{"v1 base", "/v1", "k", "/v1/embeddings", true},
		{"full endpoint", "/api/embeddings", "", "/api/embeddings", false},
		{"prefixed base", "/proxy/", "", "/proxy/v1/embeddings", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type seen struct {
				path, auth, ctype, agent string
				req                      httpRequest
			}
			got := make(chan seen, 1)
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					t.Errorf("method %s, want POST", r.Method)
				}
				req := httpTestDecode(t, r)
				got <- seen{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), req}
				httpTestAnswer(w, req, httpTestVec)
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL + tc.suffix, Model: "toy-embed", APIKey: tc.key, Base64: tc.base64})
			if _, err := e.Transform(context.Background(), []string{"a <b> & c"}); err != nil {
				t.Fatalf("Transform: %v", err)
			}
			s := <-got
			wantAuth, wantFormat := "", "float"
			if tc.key != "" {
				wantAuth = "Bearer " + tc.key
			}
			if tc.base64 {
				wantFormat = "base64"
			}
			if s.path != tc.wantPath {
				t.Errorf("path %q, want %q", s.path, tc.wantPath)
			}
			if s.auth != wantAuth {
				t.Errorf("Authorization %q, want %q", s.auth, wantAuth)
			}
			if s.ctype != "application/json" || s.agent != "domainflow" {
				t.Errorf("Content-Type %q, User-Agent %q; want application/json, domainflow", s.ctype, s.agent)
			}
			if s.req.Model != "toy-embed" || s.req.EncodingFormat != wantFormat || !slices.Equal(s.req.Input, []string{"a <b> & c"}) {
				t.Errorf("request %+v, want model toy-embed, format %s, input [a <b> & c]", s.req, wantFormat)
			}
		})
	}
}

func TestHTTPBase64(t *testing.T) {
	want := [][]float32{{0.1, -2.5, 3e-8, 1e30}, {-0, 1, 2, math.SmallestNonzeroFloat32}}
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		req := httpTestDecode(t, r)
		if req.EncodingFormat != "base64" {
			t.Errorf("encoding_format %q, want base64", req.EncodingFormat)
		}
		httpTestAnswer(w, req, func(s string) []float32 { n, _ := strconv.Atoi(s); return want[n] })
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Base64: true})
	v, err := e.Transform(context.Background(), []string{"0", "1"})
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	for i := range want {
		if got := v.Dense.Row(i); !slices.Equal(got, want[i]) {
			t.Errorf("row %d = %v, want %v (bit for bit)", i, got, want[i])
		}
	}
}

// TestHTTPRetry: transient failures are retried, then the request succeeds.
func TestHTTPRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(w http.ResponseWriter) // how the first two attempts fail
	}{
		{"500", func(w http.ResponseWriter) { http.Error(w, "oops", http.StatusInternalServerError) }},
		{"502", func(w http.ResponseWriter) { http.Error(w, "", http.StatusBadGateway) }},
		{"503", func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) }},
		{"408", func(w http.ResponseWriter) { http.Error(w, "", http.StatusRequestTimeout) }},
		{"429", func(w http.ResponseWriter) { http.Error(w, "slow down", http.StatusTooManyRequests) }},
		{"connection dropped", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
		{"truncated body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write([]byte(`{"data":[`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				req := httpTestDecode(t, r)
				if requests.Add(1) <= 2 {
					tc.fail(w)
					return
				}
				httpTestAnswer(w, req, httpTestVec)
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Retries: 2})
			v, err := e.Transform(context.Background(), []string{"t7"})
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if got := v.Dense.Row(0); !slices.Equal(got, httpTestVec("t7")) {
				t.Errorf("row 0 = %v, want %v", got, httpTestVec("t7"))
			}
			if n := requests.Load(); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
		})
	}
}

// TestHTTPRetryAfter: the wait before a retry honours Retry-After on 429 and
// 503, and only there.
func TestHTTPRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		header     string
		want       time.Duration // the wait; 0: the backoff, at most 1ms
		retryAfter time.Duration // StatusError.RetryAfter when retries run out
	}{
		{"429 seconds", 429, "2", 2 * time.Second, 2 * time.Second},
		{"503 seconds", 503, "7", 7 * time.Second, 7 * time.Second},
		{"429 capped", 429, "86400", time.Minute, 86400 * time.Second},
		{"429 date", 429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), time.Minute, time.Hour},
		{"429 garbage", 429, "soon", 0, 0},
		{"500 ignores it", 500, "5", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.header)
				http.Error(w, "wait", tc.status)
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Retries: 1})
			var waits []time.Duration
			e.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			_, err := e.Transform(context.Background(), []string{"x"})
			if !errors.Is(err, ErrTransient) {
				t.Fatalf("err = %v, want ErrTransient", err)
			}
			if len(waits) != 1 {
				t.Fatalf("waits %v, want one", waits)
			}
			if w := waits[0]; (tc.want == 0 && w > time.Millisecond) || (tc.want != 0 && (w < tc.want-2*time.Second || w > tc.want)) {
				t.Errorf("waited %v, want %v", w, tc.want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Fatalf("err = %v, want a *StatusError %d", err, tc.status)
			}
			if d := se.RetryAfter - tc.retryAfter; d < -2*time.Second || d > 0 {
				t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tc.retryAfter)
			}
		})
	}
}

func TestHTTPRetriesExhausted(t *testing.T) {
	var requests atomic.Int64
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Retries: 3})
	_, err := e.Transform(context.Background(), []string{"x"})
	if n := requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4 (1 + 3 retries)", n)
	}
	var se *StatusError
	if !errors.Is(err, ErrTransient) || !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("err = %v, want ErrTransient wrapping a 503 *StatusError", err)
	}
	want := "embed: http: POST " + srv.URL + "/v1/embeddings: 503 Service Unavailable: overloaded (gave up after 4 attempts)"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Errorf("err has no Temporary() == true")
	}

	// Negative Retries: one attempt only.
	requests.Store(0)
	e = httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Retries: -1})
	if _, err := e.Transform(context.Background(), []string{"x"}); !errors.Is(err, ErrTransient) || requests.Load() != 1 {
		t.Errorf("Retries -1: %d requests, err %v; want 1, ErrTransient", requests.Load(), err)
	}
}

func TestHTTPPermanentStatus(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	for _, tc := range []struct {
		status   int
		body     string
		wantBody string
	}{
		{400, `{"error":{"message":"input too long"}}`, `{"error":{"message":"input too long"}}`},
		{401, "bad key", "bad key"},
		{404, "", ""},
		{413, long, strings.Repeat("é", 100)},
		{422, "x", "x"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			var requests atomic.Int64
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL})
			_, err := e.Transform(context.Background(), []string{"x"})
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1 (not retried)", n)
			}
			if errors.Is(err, ErrTransient) {
				t.Errorf("err = %v is transient, want permanent", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status || se.Temporary() || se.Body != tc.wantBody {
				t.Fatalf("err = %#v, want a permanent *StatusError %d with body %q", err, tc.status, tc.wantBody)
			}
			want := fmt.Sprintf("embed: http: POST %s/v1/embeddings: %d %s", srv.URL, tc.status, http.StatusText(tc.status))
			if tc.wantBody != "" {
				want += ": " + tc.wantBody
			}
			if err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	var requests atomic.Int64
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		httpTestWait(r) // past any Timeout
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Timeout: 50 * time.Millisecond, Retries: 2})
	start := time.Now()
	_, err := e.Transform(context.Background(), []string{"x"})
	took := time.Since(start)
	if !errors.Is(err, ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTransient and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "no complete response within 50ms") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("err = %q, want it to name the timeout and the attempts", err)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, want about 3×50ms", took)
	}
}

// TestHTTPBadResponse: answers that cannot be right are permanent errors,
// not retried, that name the problem.
func TestHTTPBadResponse(t *testing.T) {
	item := func(i int, emb any) map[string]any {
		return map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	list := func(items ...map[string]any) string {
		b, _ := json.Marshal(map[string]any{"object": "list", "data": items})
		return string(b)
	}
	v3 := []float32{1, 2, 3}
	for _, tc := range []struct {
		name string
		body string
		dims int
		want string
	}{
		{"too few", list(item(0, v3)), 0, "embed: http: service returned 1 embeddings for 2 inputs"},
		{"too many", list(item(0, v3), item(1, v3), item(2, v3)), 0, "embed: http: service returned 3 embeddings for 2 inputs"},
		{"index out of range", list(item(0, v3), item(2, v3)), 0, "embed: http: service returned index 2 for a request of 2 inputs"},
		{"negative index", list(item(-1, v3), item(1, v3)), 0, "embed: http: service returned index -1 for a request of 2 inputs"},
		{"duplicate index", list(item(1, v3), item(1, v3)), 0, "embed: http: service returned index 1 twice"},
		{"configured dimension", list(item(0, v3), item(1, v3)), 4, "embed: http: embedding 0 has dimension 3, want 4"},
		{"mixed dimensions", list(item(0, v3), item(1, []float32{1, 2})), 0, "embed: http: embedding 1 has dimension 2, want 3"},
		{"NaN", list(item(0, v3), item(1, httpTestBase64([]float32{1, float32(math.NaN()), 3}))), 0, "embed: http: embedding 1 has NaN at position 1"},
		{"Inf", list(item(0, httpTestBase64([]float32{float32(math.Inf(-1)), 2, 3})), item(1, v3)), 0, "embed: http: embedding 0 has -Inf at position 0"},
		{"float32 overflow", list(item(0, v3), item(1, []float64{1, 2, 1e39})), 0, "embed: http: embedding 1 has +Inf at position 2"},
		{"NaN literal", `{"data":[{"index":0,"embedding":[NaN,1,2]},{"index":1,"embedding":[1,2,3]}]}`, 0, "malformed response: invalid character 'N'"},
		{"malformed JSON", `{"data":[{"index":0,`, 0, "malformed response: unexpected end of JSON input"},
		{"HTML", `<html>proxy error</html>`, 0, "malformed response: invalid character '<'"},
		{"empty embedding", list(item(0, []float32{}), item(1, v3)), 0, "embed: http: embedding 0 is empty"},
		{"null embedding", list(item(0, v3), item(1, nil)), 0, "embed: http: embedding 1 is empty"},
		{"object embedding", list(item(0, v3), item(1, map[string]int{"a": 1})), 0, "embed: http: embedding 1: neither an array of numbers nor a base64 string"},
		{"strings in array", list(item(0, v3), item(1, []string{"1", "2", "3"})), 0, "embed: http: embedding 1: malformed: json: cannot unmarshal string"},
		{"base64 length", list(item(0, v3), item(1, base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6}))), 0, "embed: http: embedding 1: base64 payload of 6 bytes is not a whole number of float32 values"},
		{"base64 garbage", list(item(0, v3), item(1, "!!!!")), 0, "embed: http: embedding 1: malformed base64"},
		{"error object", `{"error":{"message":"model not loaded"}}`, 0, `service answered with an error: {"message":"model not loaded"}`},
		{"no data", `{"object":"list","data":[]}`, 0, "embed: http: service returned 0 embeddings for 2 inputs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			})
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Dims: tc.dims})
			v, err := e.Transform(context.Background(), []string{"a", "b"})
			if err == nil {
				t.Fatalf("Transform = %d rows, nil error; want %q", v.Len(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "embed: http: ") {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if errors.Is(err, ErrTransient) {
				t.Errorf("err = %v is transient, want permanent", err)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1 (not retried)", n)
			}
		})
	}
}

func TestHTTPLearnedDimension(t *testing.T) {
	var dim atomic.Int64
	dim.Store(3)
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		httpTestAnswer(w, httpTestDecode(t, r), func(string) []float32 { return make([]float32, dim.Load()) })
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL})
	if _, err := e.Transform(context.Background(), []string{"a"}); err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if d := e.Dim(); d != 3 {
		t.Fatalf("Dim() = %d after a response of dimension 3", d)
	}
	dim.Store(4) // the service changed model under us
	_, err := e.Transform(context.Background(), []string{"a", "b"})
	if want := "embed: http: embedding 1 has dimension 4, want 3"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if d := e.Dim(); d != 3 {
		t.Errorf("Dim() = %d after a wrong response, want 3 still", d)
	}
}

func TestHTTPNormalize(t *testing.T) {
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		httpTestAnswer(w, httpTestDecode(t, r), func(s string) []float32 {
			switch s {
			case "zero":
				return []float32{0, 0, 0}
			case "345":
				return []float32{3, 4, 0}
			}
			return httpTestVec(s)
		})
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, Normalize: true, BatchSize: 3})
	texts := append(httpTestTexts(8), "345", "zero")
	v, err := e.Transform(context.Background(), texts)
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	for i := range 9 {
		var s float64
		for _, x := range v.Dense.Row(i) {
			s += float64(x) * float64(x)
		}
		if math.Abs(math.Sqrt(s)-1) > 1e-6 {
			t.Errorf("row %d = %v has norm %v, want 1", i, v.Dense.Row(i), math.Sqrt(s))
		}
	}
	if got := v.Dense.Row(8); !slices.Equal(got, []float32{0.6, 0.8, 0}) {
		t.Errorf("row of (3,4,0) = %v, want [0.6 0.8 0]", got)
	}
	if got := v.Dense.Row(9); !slices.Equal(got, []float32{0, 0, 0}) {
		t.Errorf("zero row = %v, want zeros", got)
	}
}

func TestHTTPTruncateText(t *testing.T) {
	const limit = 10
	var mu sync.Mutex
	var received []string
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		req := httpTestDecode(t, r)
		for _, s := range req.Input {
			if !utf8.ValidString(s) || len(s) > limit {
				t.Errorf("server received %q: valid UTF-8 %v, %d bytes (limit %d)", s, utf8.ValidString(s), len(s), limit)
			}
		}
		mu.Lock()
		received = append(received, req.Input...)
		mu.Unlock()
		httpTestAnswer(w, req, httpTestVec)
	})
	texts := []string{"short", "0123456789", "0123456789abc", "aaaaaaaaé", "aaaaaaaaaé", "日本語の文章です", "🙂🙂🙂"}
	want := []string{"short", "0123456789", "0123456789", "aaaaaaaaé", "aaaaaaaaa", "日本語", "🙂🙂"}
	orig := slices.Clone(texts)
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, MaxTextBytes: limit})
	if _, err := e.Transform(context.Background(), texts); err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if !slices.Equal(received, want) {
		t.Errorf("server received %q, want %q", received, want)
	}
	if !slices.Equal(texts, orig) {
		t.Errorf("Transform changed its input to %q", texts)
	}
}

func TestHTTPTruncateFunc(t *testing.T) {
	for _, tc := range []struct {
		s     string
		limit int
		want  string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"abc", -1, "abc"},
		{"é", 1, ""},
		{"aé", 2, "a"},
		{"aé", 3, "aé"},
		{"€€", 5, "€"},
		{"🙂", 3, ""},
		{"a\x80\x80\x80\x80\x80b", 4, "a\x80\x80\x80"}, // invalid UTF-8: cut where asked
	} {
		if got := httpTruncate(tc.s, tc.limit); got != tc.want {
			t.Errorf("httpTruncate(%q, %d) = %q, want %q", tc.s, tc.limit, got, tc.want)
		}
	}
}

func TestHTTPCancel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"waiting for the response", func(w http.ResponseWriter, r *http.Request) { httpTestWait(r) }},
		{"waiting to retry", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "", http.StatusInternalServerError) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httpTestServer(t, tc.handler)
			e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, BatchSize: 1, Retries: 1000})
			e.backoffBase, e.backoffMax = time.Hour, time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			_, err := e.Transform(ctx, httpTestTexts(20))
			if took := time.Since(start); took > time.Second {
				t.Errorf("Transform returned %v after the cancel, want promptly", took)
			}
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTransient) {
				t.Errorf("err = %v, want context.Canceled, not ErrTransient", err)
			}
		})
	}
	// A context already done sends nothing.
	var requests atomic.Int64
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) { requests.Add(1) })
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Transform(ctx, []string{"x"}); !errors.Is(err, context.Canceled) || requests.Load() != 0 {
		t.Errorf("cancelled context: err %v, %d requests; want context.Canceled, 0", err, requests.Load())
	}
}

// TestHTTPFirstErrorWins: a permanent failure of one batch cancels the
// batches in flight and is the error returned.
func TestHTTPFirstErrorWins(t *testing.T) {
	srv := httpTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		req := httpTestDecode(t, r)
		if slices.Contains(req.Input, "t5") {
			http.Error(w, "bad input", http.StatusBadRequest)
			return
		}
		httpTestWait(r)
	})
	e := httpTestEmbedder(t, HTTPConfig{URL: srv.URL, BatchSize: 2, Concurrency: 8})
	start := time.Now()
	_, err := e.Transform(context.Background(), httpTestTexts(12))
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v, want the other requests cancelled promptly", took)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 || errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the 400", err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	e := httpTestEmbedder(t, HTTPConfig{URL: "http://" + addr, Retries: 2})
	_, err = e.Transform(context.Background(), []string{"x"})
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "POST http://"+addr+"/v1/embeddings") {
		t.Errorf("err = %v, want ErrTransient naming the endpoint", err)
	}
}

func TestNewHTTPEmbedder(t *testing.T) {
	for _, tc := range []struct {
		cfg  HTTPConfig
		want string
	}{
		{HTTPConfig{}, "embed: http: URL is required"},
		{HTTPConfig{URL: "ftp://host"}, `scheme must be http or https`},
		{HTTPConfig{URL: "localhost:8080"}, `scheme must be http or https`},
		{HTTPConfig{URL: "http://"}, "has no host"},
		{HTTPConfig{URL: "http://h\x7f"}, "embed: http: URL: "},
		{HTTPConfig{URL: "http://h", BatchSize: -1}, "BatchSize must not be negative"},
		{HTTPConfig{URL: "http://h", Concurrency: -2}, "Concurrency must not be negative"},
		{HTTPConfig{URL: "http://h", Dims: -3}, "Dims must not be negative"},
		{HTTPConfig{URL: "http://h", Timeout: -time.Second}, "Timeout must not be negative"},
	} {
		if _, err := NewHTTPEmbedder(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewHTTPEmbedder(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}

	e, err := NewHTTPEmbedder(HTTPConfig{URL: "https://user:secret@example.com/v1?api-version=2", Dims: 768})
	if err != nil {
		t.Fatal(err)
	}
	c := e.cfg
	if c.BatchSize != 64 || c.Concurrency != 4 || c.Timeout != 30*time.Second || c.Retries != 4 ||
		c.MaxTextBytes != 32<<10 || c.UserAgent != "domainflow" || c.Client == nil || cap(e.sem) != 4 {
		t.Errorf("defaults: %+v", c)
	}
	if c.URL != "https://user:secret@example.com/v1?api-version=2" {
		t.Errorf("cfg.URL = %q, want the URL as given (it is saved)", c.URL)
	}
	if e.endpoint != "https://user:secret@example.com/v1/embeddings?api-version=2" || strings.Contains(e.redacted, "secret") {
		t.Errorf("endpoint %q, redacted %q", e.endpoint, e.redacted)
	}
	if e.Dim() != 768 {
		t.Errorf("Dim() = %d, want the configured 768", e.Dim())
	}
}

func TestHTTPBackoff(t *testing.T) {
	e, err := NewHTTPEmbedder(HTTPConfig{URL: "http://h"})
	if err != nil {
		t.Fatal(err)
	}
	for n, d := range []time.Duration{200, 400, 800, 1600, 3200, 6400, 10000, 10000} {
		d *= time.Millisecond
		for range 20 {
			if w := e.backoff(n); w < d/2 || w > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, w, d/2, d)
			}
		}
	}
	if w := e.backoff(1000); w < 5*time.Second || w > 10*time.Second {
		t.Errorf("backoff(1000) = %v, want in [5s, 10s]", w)
	}
}

func TestHTTPRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 10 ", 10 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"later", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := httpRetryAfter(tc.h, now); got != tc.want {
			t.Errorf("httpRetryAfter(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func ExampleHTTPEmbedder() {
	// A stand-in for an embedding service: the vector of a text counts its
	// a's and b's, and the answer lists the inputs in reverse order.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		var data []item
		for i := len(req.Input) - 1; i >= 0; i-- {
			s := req.Input[i]
			data = append(data, item{i, []float32{float32(strings.Count(s, "a")), float32(strings.Count(s, "b"))}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
	}))
	defer srv.Close()

	e, err := NewHTTPEmbedder(HTTPConfig{URL: srv.URL, Model: "toy", Normalize: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := e.Transform(context.Background(), []string{"aaa", "abab", "bbbb"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("dim", e.Dim())
	for i := range v.Len() {
		fmt.Printf("%.3f\n", v.Dense.Row(i))
	}
	// Output:
	// dim 2
	// [1.000 0.000]
	// [0.707 0.707]
	// [0.000 1.000]
}
