package train

import "math"

// Schedule is the per-iteration learning-rate schedule of the official
// training code (timm CosineLRScheduler, docs/method.md 5): a linear warm-up from
// WarmupLR to BaseLR over WarmupSteps, then cosine decay to MinLR with t
// counted from 0 including the warm-up (no warm-up prefix), reaching MinLR
// at TotalSteps and staying there (cool-down).
type Schedule struct {
	BaseLR, WarmupLR, MinLR float64
	WarmupSteps, TotalSteps int64
}

// LR returns the learning rate of iteration t (0-based), the one the t-th
// optimizer update uses.
func (s Schedule) LR(t int64) float64 {
	if t < s.WarmupSteps {
		return s.WarmupLR + float64(t)*(s.BaseLR-s.WarmupLR)/float64(s.WarmupSteps)
	}
	if s.TotalSteps <= 0 || t >= s.TotalSteps {
		return s.MinLR
	}
	return s.MinLR + 0.5*(s.BaseLR-s.MinLR)*(1+math.Cos(math.Pi*float64(t)/float64(s.TotalSteps)))
}
