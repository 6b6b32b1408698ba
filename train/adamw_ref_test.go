package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/nn"
)

// TestAdamWMatchesPyTorch replays the five fixed-gradient steps of
// testdata/reference/adamw.safetensors (torch.optim.AdamW in float64, lr
// 1e-3, weight decay 0.05 on w and none on b).
func TestAdamWMatchesPyTorch(t *testing.T) {
	const path = "../testdata/reference/adamw.safetensors"
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Skipf("fixture: %v", err)
	}
	get := func(name string) []float32 {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		return x.Data
	}
	w := nn.NewParam("w", false, 6, 5)
	b := nn.NewParam("b", true, 5)
	copy(w.W.Data, get("w0"))
	copy(b.W.Data, get("b0"))
	o := NewAdamW([]*nn.Param{w, b}, 0.05)
	for k := 0; k < 5; k++ {
		copy(w.G.Data, get(fmt.Sprintf("step%d/gw", k)))
		copy(b.G.Data, get(fmt.Sprintf("step%d/gb", k)))
		o.Step(1e-3)
		for _, c := range []struct {
			p   *nn.Param
			key string
		}{{w, "w"}, {b, "b"}} {
			want := get(fmt.Sprintf("step%d/%s", k, c.key))
			maxAbs := 0.0
			for j := range want {
				maxAbs = math.Max(maxAbs, math.Abs(float64(c.p.W.Data[j]-want[j])))
			}
			t.Logf("step %d %s: max abs diff %.3g", k, c.key, maxAbs)
			if maxAbs > 2e-6 {
				t.Errorf("step %d %s: max abs diff %.3g", k, c.key, maxAbs)
			}
		}
	}
}
