package llama

import (
	"fmt"
	"math"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// checkInvFreq verifies an official RoPE buffer (recomputed, so not loaded)
// against our table: inv_freq[i] = base^(-2i/d).
func checkInvFreq(mm models.Model, name string, e *checkpoint.Entry) error {
	m, ok := mm.(*Model)
	if !ok {
		return fmt.Errorf("%s: not a llama model", name)
	}
	d := m.Cfg.HeadDim
	if e.Numel() != d/2 || e.F32 == nil {
		return fmt.Errorf("state dict: %s has %d values, want %d (head dim %d)", name, e.Numel(), d/2, d)
	}
	for i, v := range e.F32 {
		want := invFreq(m.Cfg.RopeBase, i, d)
		if diff := float64(v) - want; diff > 1e-3*want || -diff > 1e-3*want {
			return fmt.Errorf("state dict: %s[%d] = %g, our RoPE (base %g) uses %g", name, i, v, m.Cfg.RopeBase, want)
		}
	}
	return nil
}

func invFreq(base float64, i, d int) float64 {
	return math.Pow(base, -float64(2*i)/float64(d))
}
