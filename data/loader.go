package data

import (
	"fmt"
	"math/rand/v2"

	"github.com/slabml/slab/tensor"
)

// LoaderConfig selects how a Loader walks a Dataset.
type LoaderConfig struct {
	Batch    int
	Shuffle  bool   // a new permutation every epoch
	Augment  bool   // random crop (Dataset.Pad) and, if Dataset.Flip, flips
	DropLast bool   // skip the final partial batch
	Seed     uint64 // with the epoch number, fixes order and augmentation
}

// Loader yields the batches of one epoch after another into buffers it
// owns and reuses, so iterating allocates nothing after the first batch.
//
// Epoch e's order and augmentation come from a random stream seeded with
// (Seed, e) alone, so any epoch can be regenerated without replaying the
// earlier ones: a resumed run calls SetEpoch and sees exactly the batches
// the interrupted run would have.
type Loader struct {
	DS  *Dataset
	Cfg LoaderConfig

	epoch int
	pos   int
	perm  []int
	pcg   *rand.PCG
	rng   *rand.Rand
	x     *tensor.Tensor
	lab   []int
}

// NewLoader checks cfg against ds and positions the loader at epoch 0.
func NewLoader(ds *Dataset, cfg LoaderConfig) (*Loader, error) {
	if ds == nil || ds.N == 0 {
		return nil, fmt.Errorf("data: loader needs a non-empty data set")
	}
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("data: batch size %d must be positive", cfg.Batch)
	}
	if cfg.DropLast && cfg.Batch > ds.N {
		return nil, fmt.Errorf("data: batch %d is larger than %s's %d images with drop-last", cfg.Batch, ds.Name, ds.N)
	}
	l := &Loader{DS: ds, Cfg: cfg, perm: make([]int, ds.N), pcg: rand.NewPCG(0, 0)}
	l.rng = rand.New(l.pcg)
	l.SetEpoch(0)
	return l, nil
}

// SetEpoch restarts the loader at the beginning of epoch e.
func (l *Loader) SetEpoch(e int) {
	l.epoch, l.pos = e, 0
	l.pcg.Seed(l.Cfg.Seed, uint64(e)^0x9e3779b97f4a7c15)
	for i := range l.perm {
		l.perm[i] = i
	}
	if l.Cfg.Shuffle {
		l.rng.Shuffle(len(l.perm), func(i, j int) { l.perm[i], l.perm[j] = l.perm[j], l.perm[i] })
	}
}

// Epoch is the epoch the next batch belongs to.
func (l *Loader) Epoch() int { return l.epoch }

// BatchesPerEpoch is the number of batches Next yields per epoch.
func (l *Loader) BatchesPerEpoch() int {
	if l.Cfg.DropLast {
		return l.DS.N / l.Cfg.Batch
	}
	return (l.DS.N + l.Cfg.Batch - 1) / l.Cfg.Batch
}

// Next returns the next batch: images [B,C,H,W] and labels, both owned by
// the loader and valid until the next call. At the end of an epoch it
// returns ok=false once and moves on to the next epoch, so
// `for x, y, ok := l.Next(); ok; x, y, ok = l.Next()` walks one epoch.
func (l *Loader) Next() (x *tensor.Tensor, labels []int, ok bool) {
	n := min(l.Cfg.Batch, l.DS.N-l.pos)
	if n <= 0 || (l.Cfg.DropLast && n < l.Cfg.Batch) {
		l.SetEpoch(l.epoch + 1)
		return nil, nil, false
	}
	idx := l.perm[l.pos : l.pos+n]
	l.pos += n
	x = tensor.Ensure(&l.x, n, l.DS.C, l.DS.H, l.DS.W)
	if cap(l.lab) < n {
		l.lab = make([]int, l.Cfg.Batch)
	}
	labels = l.lab[:n]
	// Batch only fails on inconsistent buffers or indices, which the
	// loader constructs itself.
	if err := l.DS.Batch(idx, l.Cfg.Augment, l.rng, x.Data, labels); err != nil {
		panic(err)
	}
	return x, labels, true
}
