package pipeline

import (
	"testing"
	"time"
)

// TestBusyClock: busy time is the union of the batches' intervals: time
// with no batch in hand does not count, and overlapping batches count once.
func TestBusyClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type ev struct {
		begin bool
		at    float64
	}
	tests := []struct {
		name   string
		events []ev
		now    float64
		want   time.Duration
	}{
		{"none", nil, 10, 0},
		{"one batch", []ev{{true, 1}, {false, 3}}, 10, 2 * time.Second},
		{"idle between batches", []ev{{true, 0}, {false, 1}, {true, 5}, {false, 6}}, 100, 2 * time.Second},
		{"overlapping batches count once", []ev{{true, 0}, {true, 1}, {false, 2}, {false, 3}}, 10, 3 * time.Second},
		{"a batch in hand counts up to now", []ev{{true, 0}, {false, 1}, {true, 4}}, 6, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c busyClock
			for _, e := range tt.events {
				if e.begin {
					c.begin(at(e.at))
				} else {
					c.end(at(e.at))
				}
			}
			if got := c.busy(at(tt.now)); got != tt.want {
				t.Errorf("busy = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPerSecond(t *testing.T) {
	tests := []struct {
		n    int64
		d    time.Duration
		want float64
	}{
		{100, 2 * time.Second, 50},
		{100, 0, 0},
		{0, time.Second, 0},
		{3, 1500 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		if got := PerSecond(tt.n, tt.d); got != tt.want {
			t.Errorf("PerSecond(%d, %v) = %v, want %v", tt.n, tt.d, got, tt.want)
		}
	}
}
