package pipeline_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
)

// selfSigned returns a server certificate for 127.0.0.1 and the path of a
// PEM file holding it as the CA to trust.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "domainflow test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, caFile
}

// TestTLSAndSASL produces and reads through brokers that require TLS and/or
// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), with the client configuration
// built from the same options the CLI flags fill; a wrong password and a
// missing CA are refused.
func TestTLSAndSASL(t *testing.T) {
	cert, caFile := selfSigned(t)
	tests := []struct {
		name     string
		tls      bool
		mech     string // kfake's name
		opts     pipeline.SASLOptions
		tlsOpts  pipeline.TLSOptions
		wantFail bool
	}{
		{name: "plain", mech: "PLAIN", opts: pipeline.SASLOptions{Mechanism: "plain", User: "u", Password: "p"}},
		{name: "scram-sha-256", mech: "SCRAM-SHA-256", opts: pipeline.SASLOptions{Mechanism: "scram-sha-256", User: "u", Password: "p"}},
		{name: "scram-sha-512", mech: "SCRAM-SHA-512", opts: pipeline.SASLOptions{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"}},
		{name: "tls", tls: true, tlsOpts: pipeline.TLSOptions{Enable: true, CAFile: caFile}},
		{name: "tls+scram", tls: true, mech: "SCRAM-SHA-256", tlsOpts: pipeline.TLSOptions{CAFile: caFile}, opts: pipeline.SASLOptions{Mechanism: "scram-sha-256", User: "u", Password: "p"}},
		{name: "wrong password", mech: "SCRAM-SHA-256", opts: pipeline.SASLOptions{Mechanism: "scram-sha-256", User: "u", Password: "nope"}, wantFail: true},
		{name: "untrusted certificate", tls: true, tlsOpts: pipeline.TLSOptions{Enable: true}, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}
			if tt.tls {
				opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			}
			if tt.mech != "" {
				opts = append(opts, kfake.EnableSASL(), kfake.Superuser(tt.mech, "u", "p"))
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cc := pipeline.ClientConfig{Brokers: c.ListenAddrs()}
			if cc.TLS, err = tt.tlsOpts.Config(); err != nil {
				t.Fatal(err)
			}
			if cc.SASL, err = tt.opts.Build(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = pipeline.EnsureTopics(ctx, cc, pipeline.TopicSpec{Name: "secure", Partitions: 1})
			if tt.wantFail {
				if err == nil {
					t.Fatal("EnsureTopics succeeded; want it refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pipetest.Produce(t, cc, pipetest.JSONDoc("secure", "a", "over a secured connection"))
			msgs := pipetest.ReadAll(t, cc, "secure")
			if len(msgs) != 1 || string(msgs[0].Key) != "a" {
				t.Fatalf("read back %d messages, want the one produced", len(msgs))
			}
		})
	}
}

func TestSASLOptionsErrors(t *testing.T) {
	for _, o := range []pipeline.SASLOptions{
		{Mechanism: "gssapi", User: "u"},
		{Mechanism: "plain"},
	} {
		if _, err := o.Build(); err == nil {
			t.Errorf("SASLOptions%+v.Build() succeeded; want an error", o)
		}
	}
	if m, err := (pipeline.SASLOptions{}).Build(); m != nil || err != nil {
		t.Errorf("empty SASLOptions = %v, %v; want no mechanism", m, err)
	}
	if _, err := (pipeline.TLSOptions{CertFile: "x.pem"}).Config(); err == nil {
		t.Error("a client certificate without a key was accepted")
	}
	if _, err := (pipeline.TLSOptions{CAFile: "/nonexistent/ca.pem"}).Config(); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
