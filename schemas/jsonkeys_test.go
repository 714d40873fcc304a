package schemas

import "testing"

func TestSnakeCase(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"WarmupSteps", "warmup_steps"}, {"MinLR", "min_lr"}, {"LR", "lr"}, {"Beta1", "beta1"},
		{"ClipNorm", "clip_norm"}, {"K", "k"}, {"MaxIter", "max_iter"}, {"WindowTolerance", "window_tolerance"},
		{"LRWarm", "lr_warm"}, {"already_snake", "already_snake"}, {"Ctx", "ctx"},
	} {
		if got := SnakeCase(tt.in); got != tt.want {
			t.Errorf("SnakeCase(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSnakeCaseKeys(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"WarmupSteps":100,"LR":0.001}`, `{"lr":0.001,"warmup_steps":100}`},
		{`{"warmup_steps":5,"WarmupSteps":100}`, `{"warmup_steps":5}`},
		{`{"lr":1}`, `{"lr":1}`},
		{`[1]`, `[1]`},
		{`null`, `null`},
	} {
		got, err := SnakeCaseKeys([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("SnakeCaseKeys(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := SnakeCaseKeys([]byte(`{"a":`)); err == nil {
		t.Error("SnakeCaseKeys of a broken object: no error")
	}
}
