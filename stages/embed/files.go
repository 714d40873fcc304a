package embed

// Offline featurization: input files → a Parquet features file.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/domainflow/domainflow/schemas"
)

// FilesConfig configures FeaturizeFiles. The zero value of every field but
// Inputs and Out works.
type FilesConfig struct {
	// Inputs are the input files, read in order as schemas.OpenInput reads
	// each (schemas.DocReader); "-" reads JSON lines from Stdin. Records
	// that cannot be read are logged and counted as rejected.
	Inputs []string
	// Stdin is what the input "-" reads. Default: os.Stdin.
	Stdin io.Reader
	// Out is the output Parquet file (FeaturesWriter: one row per
	// document: id, dim, indices and values, state version), written
	// atomically.
	Out string
	// Limits validate the documents. Default: schemas' defaults.
	Limits schemas.Limits
	// State is the featurizer to use. Default nil: one of Kind is fitted
	// on the documents (or on the first FitSample) with Options.
	State *State
	// Kind is the kind of featurizer fitted when State is nil. Default:
	// KindTfidf.
	Kind Kind
	// Options configure the fit. The zero value gives each kind's own
	// defaults; DefaultFitOptions are the `pipeline` commands'.
	Options FitOptions
	// FitSample fits on the first FitSample documents only, then
	// transforms them all. Default 0: fit on every document, while reading
	// them when the kind fits on a stream (Factory.Streams).
	FitSample int
	// StateDir, when set, is where a fitted state is saved as the next
	// version (SaveState); the rows then carry that version. Default "":
	// the fitted state is not saved, and the rows carry version 0.
	StateDir string
	// Logger gets a warning for each rejected record and a line when the
	// featurizer is fitted. Default: nothing is logged.
	Logger *slog.Logger
}

// FilesReport is what FeaturizeFiles did.
type FilesReport struct {
	State    *State // the featurizer used: FilesConfig.State, or the one fitted
	Fitted   bool   // State was fitted here
	Docs     int    // documents featurized
	Bytes    int64  // their text bytes
	Rejected int    // records that could not be read
	Dim      int    // columns of the vectors
	NNZ      int64  // values stored: nonzeros (sparse), or rows × Dim (dense)
	// Read is the time from the call until the inputs were read and
	// decoded; Featurize until the vectors were ready (a fit on a stream
	// overlaps reading).
	Read, Featurize time.Duration
}

// FeaturizeFiles featurizes the documents of cfg.Inputs and writes their
// vectors to cfg.Out: the offline `pipeline embed`. Without cfg.State it
// fits a featurizer first (saved into cfg.StateDir when set). A fit on
// every document of a kind that fits on a stream tokenizes while the files
// are decoded and keeps no texts; one of a kind whose rows are weighed in
// order (Factory.RowsProgress) with nothing to save also writes the rows
// while the rest are weighed. The file is the same either way.
func FeaturizeFiles(ctx context.Context, cfg FilesConfig) (*FilesReport, error) {
	start := time.Now()
	if cfg.Out == "" {
		return nil, errors.New("embed: no output file")
	}
	if err := schemas.CheckInputs(cfg.Inputs); err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind := cfg.Kind
	if kind == "" {
		kind = KindTfidf
	}
	fac, ok := Lookup(kind)
	s, fitted := cfg.State, cfg.State == nil
	if fitted && !ok {
		return nil, fmt.Errorf("embed: fit: %w", unknownKind(string(kind)))
	}
	dr := schemas.NewDocReader(cfg.Inputs, cfg.Limits, cfg.Stdin, log)
	defer dr.Close()
	var (
		v        Vectors
		err      error
		readDone time.Time
	)
	// With no state to save (rows of state version 0), a fit on everything
	// of a kind that hands its rows over as they are weighed (tfidf,
	// hashing) has a goroutine write them meanwhile.
	var feed *rowFeed
	if fitted && cfg.FitSample <= 0 && cfg.StateDir == "" && fac.RowsProgress {
		feed = newRowFeed()
		go feed.write(cfg.Out, dr.IDs) // owner: FeaturizeFiles, which waits on feed.errc
	}
	if fitted && cfg.FitSample <= 0 && fac.Streams() {
		// Fit on everything while reading: tokenization overlaps decoding.
		// The vectors come out of the fit, so the texts are not kept.
		dr.DropTexts = true
		const chunk = 64
		opt := cfg.Options
		if feed != nil {
			opt.Rows = feed.rows
		}
		s, v, err = fitFilesState(cfg, kind, log, func() (Featurizer, Vectors, error) {
			return FitStream(ctx, kind, func() ([]string, error) {
				texts, err := dr.Next(chunk)
				if errors.Is(err, io.EOF) && readDone.IsZero() {
					readDone = time.Now()
				}
				return texts, err
			}, opt)
		})
		if err == nil && feed != nil && (v.Sparse == nil || s.Settings.Version != 0) {
			err = errors.New("fit gave no sparse rows of state version 0") // cannot happen
		}
		if err != nil {
			if feed != nil {
				feed.abort()
				<-feed.errc
			}
			return nil, fmt.Errorf("embed: fit: %w", err)
		}
	} else {
		if _, err := dr.Next(math.MaxInt); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("embed: %w", err)
		}
		readDone = time.Now()
		if texts := dr.Texts(); len(texts) > 0 && fitted {
			sample := texts
			if cfg.FitSample > 0 && cfg.FitSample < len(sample) {
				sample = sample[:cfg.FitSample]
			}
			s, v, err = fitFilesState(cfg, kind, log, func() (Featurizer, Vectors, error) {
				return Fit(ctx, kind, sample, cfg.Options)
			})
			if err != nil {
				return nil, fmt.Errorf("embed: fit: %w", err)
			}
			if len(sample) < len(texts) {
				v = Vectors{}
			}
		}
	}
	if dr.Docs() == 0 {
		return nil, fmt.Errorf("embed: no documents in %v", cfg.Inputs)
	}
	if v.Len() == 0 {
		if v, err = s.Featurizer.Transform(ctx, dr.Texts()); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
	}
	featDone := time.Now()
	ids := dr.IDs()
	log.Debug("featurized", "docs", dr.Docs(), "bytes", dr.Bytes(), "read_seconds", roundSeconds(readDone.Sub(start)), "seconds", roundSeconds(featDone.Sub(start)))
	settings, _ := json.Marshal(s.Settings)
	if feed != nil {
		feed.finish(v.Sparse, string(settings))
		err = <-feed.errc
	} else {
		err = writeFileAtomic(cfg.Out, func(w io.Writer) error {
			fw := NewFeaturesWriter(w, string(settings))
			if err := fw.Write(ids, v, s.Settings.Version); err != nil {
				return err
			}
			return fw.Close()
		})
	}
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	rep := &FilesReport{
		State: s, Fitted: fitted, Docs: dr.Docs(), Bytes: dr.Bytes(), Rejected: dr.Rejected(), Dim: v.Dim(),
		Read: readDone.Sub(start), Featurize: featDone.Sub(start),
	}
	if v.Sparse != nil {
		rep.NNZ = int64(v.Sparse.NNZ())
	} else {
		rep.NNZ = int64(len(v.Dense.Data))
	}
	return rep, nil
}

// fitFilesState fits with fit, makes the State, saves it into cfg.StateDir
// when set, and logs "featurizer fitted".
func fitFilesState(cfg FilesConfig, kind Kind, log *slog.Logger, fit func() (Featurizer, Vectors, error)) (*State, Vectors, error) {
	start := time.Now()
	fz, v, err := fit()
	if err != nil {
		return nil, Vectors{}, err
	}
	s, err := NewState(fz, v.Len())
	if err != nil {
		return nil, Vectors{}, err
	}
	attrs := []any{"featurizer", kind, "docs", v.Len(), "dim", fz.Dim()}
	if cfg.StateDir != "" {
		if _, err := SaveState(cfg.StateDir, s); err != nil {
			return nil, Vectors{}, err
		}
		attrs = append(attrs, "version", s.Settings.Version)
	}
	log.Info("featurizer fitted", append(attrs, "seconds", roundSeconds(time.Since(start)))...)
	return s, v, nil
}

// roundSeconds is d in seconds, rounded to milliseconds (for log lines).
func roundSeconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// writeFileAtomic writes path atomically (schemas.WriteFileAtomic).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	return schemas.WriteFileAtomic(path, func(f *os.File) error { return write(f) })
}

// rowFeed hands the rows of a fit (FitOptions.Rows) to a goroutine that
// writes them to the output file while the rest are weighed.
type rowFeed struct {
	mu       sync.Mutex
	cond     *sync.Cond
	m        *CSR
	done     int     // leading rows of m that are final
	settings *string // the state's settings JSON, once the fit is done
	aborted  bool
	errc     chan error // write's result
}

func newRowFeed() *rowFeed {
	r := &rowFeed{errc: make(chan error, 1)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// rows is the fit's FitOptions.Rows.
func (r *rowFeed) rows(m *CSR, done int) {
	r.mu.Lock()
	r.m, r.done = m, done
	r.cond.Broadcast()
	r.mu.Unlock()
}

// finish gives the fitted rows, all final, and the settings for the file's
// metadata.
func (r *rowFeed) finish(m *CSR, settings string) {
	r.mu.Lock()
	r.m, r.done, r.settings = m, m.Rows, &settings
	r.cond.Broadcast()
	r.mu.Unlock()
}

// abort stops the writer, which then removes its file.
func (r *rowFeed) abort() {
	r.mu.Lock()
	r.aborted = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

var errFeedAborted = errors.New("embed: the fit failed")

// write writes the rows to path as they come (ids() names them; it is
// called once rows came, when reading is over), in runs of multiples of 64
// rows so that the file is the same as one written at once (see
// FeaturesWriter.WriteRows), then the settings, and sends the result to
// errc.
func (r *rowFeed) write(path string, ids func() []string) {
	r.errc <- writeFileAtomic(path, func(w io.Writer) error {
		fw := NewFeaturesWriter(w, "")
		written := 0
		var names []string
		for {
			r.mu.Lock()
			for !r.aborted && (r.m == nil || (r.done < r.m.Rows && r.done-written < 64)) {
				r.cond.Wait()
			}
			aborted, m, done := r.aborted, r.m, r.done
			r.mu.Unlock()
			if aborted {
				return errFeedAborted
			}
			if names == nil {
				names = ids()
			}
			upto := done
			if done < m.Rows {
				upto = written + (done-written)/64*64
			}
			if err := fw.WriteRows(names, m, written, upto, 0); err != nil {
				return err
			}
			written = upto
			if written == m.Rows {
				break
			}
		}
		r.mu.Lock()
		for !r.aborted && r.settings == nil {
			r.cond.Wait()
		}
		aborted, settings := r.aborted, r.settings
		r.mu.Unlock()
		if aborted {
			return errFeedAborted
		}
		fw.SetSettings(*settings)
		return fw.Close()
	})
}
