package reftest

import (
	"math"
	"testing"
)

func TestMeasure(t *testing.T) {
	cases := []struct {
		name                  string
		got, want             []float32
		maxAbs, maxRel, scale float64
		worst                 int
		wantErr               bool
	}{
		{"equal", []float32{1, -2}, []float32{1, -2}, 0, 0, 2, -1, false},
		{"abs and rel", []float32{1.5, -2}, []float32{1, -2}, 0.5, 0.5, 2, 0, false},
		{"zero want has no rel", []float32{1e-6, 4}, []float32{0, 4}, 1e-6, 0, 4, 0, false},
		{"length", []float32{1}, []float32{1, 2}, 0, 0, 0, 0, true},
		{"nan", []float32{float32(math.NaN())}, []float32{1}, 0, 0, 0, 0, true},
	}
	for _, c := range cases {
		d, err := Measure(c.got, c.want)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if c.wantErr {
			continue
		}
		if math.Abs(d.MaxAbs-c.maxAbs) > 1e-12 || math.Abs(d.MaxRel-c.maxRel) > 1e-12 || d.Scale != c.scale || d.Worst != c.worst {
			t.Errorf("%s: got %+v, want maxAbs %g maxRel %g scale %g worst %d", c.name, d, c.maxAbs, c.maxRel, c.scale, c.worst)
		}
	}
}

// TestLoadFixture reads one committed fixture and its config.
func TestLoadFixture(t *testing.T) {
	f := Load(t, "crossentropy")
	if got := f.Num("smoothing"); got != 0.1 {
		t.Errorf("smoothing = %v, want 0.1", got)
	}
	if got := f.Labels("labels"); len(got) != 4 || got[0] != 3 || got[3] != 3 {
		t.Errorf("labels = %v, want [3 0 9 3]", got)
	}
	if got := f.T("logits").Shape; len(got) != 2 || got[0] != 4 || got[1] != 10 {
		t.Errorf("logits shape %v, want [4 10]", got)
	}
	if got := f.Names("d"); len(got) != 1 || got[0] != "logits" {
		t.Errorf(`Names("d") = %v, want [logits]`, got)
	}
}
