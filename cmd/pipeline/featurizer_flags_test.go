package main

import (
	"reflect"
	"testing"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/stages/embed"
)

// The featurizer flags left at their defaults give embed.DefaultFitOptions,
// the one place the defaults live; each flag changes its own field.
func TestFeaturizerFlagsDefaults(t *testing.T) {
	t.Setenv("DOMAINFLOW_EMBED_API_KEY", "")
	tests := []struct {
		args []string
		want func(*embed.FitOptions)
	}{
		{nil, func(*embed.FitOptions) {}},
		{[]string{"--featurizer", "lsa"}, func(*embed.FitOptions) {}},
		{[]string{"--workers", "3"}, func(o *embed.FitOptions) { o.Tfidf.Workers, o.Hashing.Workers, o.LSA.Workers = 3, 3, 3 }},
		{[]string{"--min-df", "2", "--max-df", "0.5", "--max-features", "9", "--sublinear-tf"}, func(o *embed.FitOptions) {
			o.Tfidf.MinDF, o.Tfidf.MaxDF, o.Tfidf.MaxFeatures, o.Tfidf.SublinearTF, o.Hashing.SublinearTF = 2, 0.5, 9, true, true
		}},
		{[]string{"--number-token", "", "--no-stop-words"}, func(o *embed.FitOptions) {
			o.Tfidf.Tokenizer.NumberToken, o.Tfidf.Tokenizer.StopWords = "", nil
		}},
		{[]string{"--hash-features", "16", "--alternate-sign"}, func(o *embed.FitOptions) { o.Hashing.Features, o.Hashing.AlternateSign = 16, true }},
		// An explicit --dims is a requirement, not clamped to the sample.
		{[]string{"--dims", "100"}, func(o *embed.FitOptions) { o.LSA.ClampDims = false }},
		{[]string{"--dims", "8", "--power-iters", "2", "--seed", "4"}, func(o *embed.FitOptions) {
			o.LSA.Dims, o.LSA.PowerIters, o.LSA.Seed, o.LSA.ClampDims = 8, 2, 4, false
		}},
		{[]string{"--featurizer", "http", "--http-url", "http://x", "--http-model", "m", "--http-batch", "2", "--http-no-normalize", "--http-base64"},
			func(o *embed.FitOptions) {
				o.HTTP.URL, o.HTTP.Model, o.HTTP.BatchSize, o.HTTP.Normalize, o.HTTP.Base64 = "http://x", "m", 2, false, true
			}},
	}
	for _, tt := range tests {
		var f featurizerFlags
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.register(fs, string(embed.KindTfidf), true)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		_, got, err := f.options()
		if err != nil {
			t.Fatalf("%q: options: %v", tt.args, err)
		}
		want := embed.DefaultFitOptions()
		tt.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("flags %q: options\n%+v\nwant\n%+v", tt.args, got, want)
		}
		// tfidf and hashing share one tokenizer, as in DefaultFitOptions.
		if got.Tfidf.Tokenizer != got.Hashing.Tokenizer {
			t.Errorf("flags %q: tfidf and hashing have different tokenizers", tt.args)
		}
	}
}
