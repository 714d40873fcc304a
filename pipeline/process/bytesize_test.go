package process_test

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/domainflow/domainflow/pipeline/process"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8388608", 8388608, true},
		{"0", 0, true},
		{"-1", -1, true},
		{"8MiB", 8 << 20, true},
		{"8mib", 8 << 20, true},
		{"8 MiB", 8 << 20, true},
		{"150kB", 150000, true},
		{"150KB", 150000, true},
		{"1.5MB", 1500000, true},
		{"2KiB", 2048, true},
		{"1GiB", 1 << 30, true},
		{"2GB", 2e9, true},
		{"512B", 512, true},
		{"8M", 0, false},
		{"MiB", 0, false},
		{"", 0, false},
		{"8 parsecs", 0, false},
		{"1.2.3kB", 0, false},
		{"99999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := process.ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatByteSize(t *testing.T) {
	for _, n := range []int64{0, 1, 2048, 4096, 150000, 8 << 20, 1e9, 1 << 40, 4097, 33554432} {
		s := process.FormatByteSize(n)
		back, err := process.ParseByteSize(s)
		if err != nil || back != n {
			t.Errorf("ParseByteSize(FormatByteSize(%d) = %q) = %d, %v", n, s, back, err)
		}
	}
	if s := process.FormatByteSize(8 << 20); s != "8MiB" {
		t.Errorf("FormatByteSize(8<<20) = %q, want 8MiB", s)
	}
	if s := process.FormatByteSize(150000); s != "150kB" {
		t.Errorf("FormatByteSize(150000) = %q, want 150kB", s)
	}
}

// TestByteSizeVar: a size flag takes units and plain numbers, into an int
// or an int64, and shows its default with a unit.
func TestByteSizeVar(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var small int
	var big int64
	process.ByteSizeVar(fs, &small, "batch-bytes", 8<<20, "most payload `bytes`")
	process.ByteSizeVar(fs, &big, "tokens", 150000, "training bytes")
	if small != 8<<20 || big != 150000 {
		t.Fatalf("defaults %d, %d", small, big)
	}
	if def := fs.Lookup("batch-bytes").DefValue; def != "8MiB" {
		t.Errorf("default shown as %q, want 8MiB", def)
	}
	if err := fs.Parse([]string{"--batch-bytes", "1MiB", "--tokens", "2000000"}); err != nil {
		t.Fatal(err)
	}
	if small != 1<<20 || big != 2000000 {
		t.Errorf("parsed %d, %d; want %d, 2000000", small, big, 1<<20)
	}
	if err := fs.Parse([]string{"--batch-bytes", "lots"}); err == nil {
		t.Error("--batch-bytes lots accepted")
	}
}
