package embed_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/domainflow/domainflow/stages/embed"
)

// Keywords is a featurizer of another package: it counts, in each text, the
// words its fit found most frequent. Its file is all it takes: the type, a
// Kind method, and a Register call from init.
type Keywords struct{ Words []string }

// Dim is the number of keywords.
func (k *Keywords) Dim() int { return len(k.Words) }

// Kind names the kind NewState saves it as.
func (k *Keywords) Kind() embed.Kind { return "keywords" }

// Transform counts the keywords of each text: one dense row per text.
func (k *Keywords) Transform(_ context.Context, texts []string) (embed.Vectors, error) {
	d := embed.NewDense(len(texts), len(k.Words))
	for i, t := range texts {
		for _, w := range strings.Fields(strings.ToLower(t)) {
			if j := slices.Index(k.Words, w); j >= 0 {
				d.Data[i*d.Cols+j]++
			}
		}
	}
	return embed.Vectors{Dense: d}, nil
}

// TopTerms makes Keywords an embed.TermNamer: its columns are words.
func (k *Keywords) TopTerms(w []float32, n int) []string { return embed.TopTerms(w, k.Words, n) }

// keywordsSettings is what Keywords keeps in Settings.Extra.
type keywordsSettings struct {
	Words int `json:"words"`
}

func init() {
	embed.Register("keywords", embed.Factory{
		// Fit keeps the three most frequent words (ties by word).
		Fit: func(ctx context.Context, texts []string, _ embed.FitOptions) (embed.Featurizer, embed.Vectors, error) {
			count := map[string]int{}
			for _, t := range texts {
				for _, w := range strings.Fields(strings.ToLower(t)) {
					count[w]++
				}
			}
			words := slices.SortedFunc(maps.Keys(count), func(a, b string) int {
				return cmp.Or(count[b]-count[a], strings.Compare(a, b))
			})
			k := &Keywords{Words: words[:min(3, len(words))]}
			v, err := k.Transform(ctx, texts)
			return k, v, err
		},
		Settings: func(f embed.Featurizer, set *embed.Settings) (err error) {
			set.Extra, err = json.Marshal(keywordsSettings{Words: f.Dim()})
			return err
		},
		Table: func(f embed.Featurizer) embed.StateTable {
			return embed.StateTable{Terms: f.(*Keywords).Words}
		},
		Load: func(set *embed.Settings, t embed.StateTable) (embed.Featurizer, error) {
			var ks keywordsSettings
			if err := json.Unmarshal(set.Extra, &ks); err != nil {
				return nil, err
			}
			if len(t.Terms) != ks.Words {
				return nil, fmt.Errorf("keywords: %d words in the table, %d in the settings", len(t.Terms), ks.Words)
			}
			return &Keywords{Words: t.Terms}, nil
		},
	})
}

// A featurizer kind registered from another package is fitted, saved,
// loaded and named like the built-in ones.
func ExampleRegister() {
	ctx := context.Background()
	fmt.Println("kinds:", embed.Kinds())
	k, err := embed.ParseKind("keywords")
	if err != nil {
		panic(err)
	}
	f, v, err := embed.Fit(ctx, k, []string{"the cat sat", "the cat ran", "the dog sat on the mat"}, embed.FitOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("keywords:", f.(*Keywords).Words)
	fmt.Println("fit rows:", v.Dense.Data)

	dir, err := os.MkdirTemp("", "keywords")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := embed.NewState(f, v.Len())
	if err != nil {
		panic(err)
	}
	if _, err := embed.SaveState(dir, s); err != nil {
		panic(err)
	}
	loaded, err := embed.LoadState(dir, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loaded: %s v%d, settings %s\n", loaded.Settings.Kind, loaded.Settings.Version, loaded.Settings.Extra)
	w, err := loaded.Featurizer.Transform(ctx, []string{"A cat, the cat"})
	if err != nil {
		panic(err)
	}
	fmt.Println("transform:", w.Dense.Data)
	fmt.Println("centroid terms:", embed.CentroidTerms(loaded.Featurizer, []float32{0.5, 0, 2, 1, 3, 0}, 2, 2))
	// Output:
	// kinds: [tfidf hashing lsa http keywords]
	// keywords: [the cat sat]
	// fit rows: [1 1 1 1 1 0 2 0 1]
	// loaded: keywords v1, settings {"words":3}
	// transform: [1 1 0]
	// centroid terms: [[sat the] [cat the]]
}
