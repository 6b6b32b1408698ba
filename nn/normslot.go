package nn

// NormSlot is one norm of a model with its state-dict prefix. The norm is
// held by the address of the model's field, so that package fuse can
// replace a folded norm with Identity in place and generic code (schedules,
// state-dict aliases) can find every norm without knowing the family.
type NormSlot struct {
	Name string
	Norm *Norm
}

// Lambda is the weight of the LayerNorm/RMSNorm branch the next training
// forward will use: the schedule of the first LinearNorm, 1 for a model of
// LayerNorm or RMSNorm, 0 for BatchNorm-based, folded or norm-free ones.
// Every LinearNorm of a model advances in step, so the first speaks for all.
func Lambda(slots []NormSlot) float64 {
	for _, s := range slots {
		switch n := (*s.Norm).(type) {
		case *LinearNorm:
			return n.Lambda()
		case *LayerNorm, *RMSNorm:
			return 1
		}
	}
	return 0
}

// SetSchedule restarts every LinearNorm among slots with warm warm-up
// units and a schedule of step units (iter = total_step = step), so that
// lambda decays from 1 to 0 over the next step units of training calls.
// Other norms are left alone.
func SetSchedule(slots []NormSlot, warm, step int64) {
	for _, s := range slots {
		if l, ok := (*s.Norm).(*LinearNorm); ok {
			l.Warm, l.Iter, l.TotalStep = warm, step, step
		}
	}
}

// AffineNorm is a norm that is a fixed per-channel affine map
// y = a ⊙ x + b in evaluation: BatchNorm, RepBN, and LinearNorm (whose
// evaluation form is its RepBN).
type AffineNorm interface {
	Norm
	// Affine returns a and b of the evaluation-mode map (new slices).
	Affine() (a, b []float32)
}

// Affine returns the evaluation-mode map of its RepBN branch: in
// evaluation a LinearNorm is that branch alone, whatever lambda is.
func (l *LinearNorm) Affine() (a, b []float32) { return l.Norm2.Affine() }

// FoldSite is where a model lets one norm fold into its neighbours
// (docs/method.md 2.1): Into lists the Linear layers that read the norm's
// output (several allowed: q, k and v read one norm), From the layer whose
// output the norm reads (a patch-embedding or merge convolution, weight
// [out, ...] and bias [out]). A site has Into, From, or both left to the
// folder's choice: package fuse folds into From when it is set, else into
// every layer of Into.
type FoldSite struct {
	Slot NormSlot
	Into []*Linear
	// FromWeight and FromBias are the producing layer's parameters.
	FromWeight, FromBias *Param
}
