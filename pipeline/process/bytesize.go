package process

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// byteUnits are the units a size flag takes (ByteSizeVar), lower-cased:
// powers of 1000 (kB, MB, GB, TB, as the commands print sizes) and of 1024
// (KiB, MiB, GiB, TiB).
var byteUnits = map[string]float64{
	"b":  1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseByteSize parses a size in bytes: a plain integer ("8388608"), or a
// number with a unit, with or without a space ("8MiB", "1.5 MB", "150kB"):
// B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of
// 1024), the case of the letters ignored. A fractional size is rounded to
// whole bytes.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	if i <= 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, or a number with a unit (B, kB, MB, GB, KiB, MiB, GiB)", s)
	}
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, strings.TrimSpace(t[i:]))
	}
	f, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %q is not a number", s, t[:i])
	}
	v := math.Round(f * unit)
	if math.IsNaN(v) || v > math.MaxInt64 || v < math.MinInt64 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(v), nil
}

// FormatByteSize writes n as ParseByteSize reads it, in the largest unit
// that divides it (preferring KiB, MiB, ... when both do): "8MiB",
// "150kB", "4097".
func FormatByteSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// byteSize is the pflag.Value of a size flag over an int or int64.
type byteSize[T int | int64] struct{ p *T }

func (b byteSize[T]) String() string {
	if b.p == nil {
		return "0"
	}
	return FormatByteSize(int64(*b.p))
}

func (b byteSize[T]) Set(s string) error {
	n, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n { // an int of 32 bits
		return fmt.Errorf("size %q: out of range", s)
	}
	*b.p = T(n)
	return nil
}

func (b byteSize[T]) Type() string { return "bytes" }

// ByteSizeVar defines a size flag in bytes stored in p, with default value
// (shown in the help as FormatByteSize writes it): it takes a plain number
// of bytes or a number with a unit (ParseByteSize: "8MiB", "150kB").
func ByteSizeVar[T int | int64](fs *pflag.FlagSet, p *T, name string, value T, usage string) {
	*p = value
	fs.Var(byteSize[T]{p}, name, usage)
}
