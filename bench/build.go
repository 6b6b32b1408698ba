package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// Classifiers builds the named registry classifiers with random weights
// (from seed; input side size when > 0), after checking that their
// weights and the activations of a batch of batch images fit in memory:
// up to two images against models.Estimate before building anything,
// larger batches against each built model's measured buffers per image
// (models.ActivationBytes; the estimate counts training's buffers too and
// would refuse batches that fit). A model whose norms fold gets
// random running statistics (a non-trivial fold, as in a trained model)
// and is timed twice: folded under its name, and as built under
// name/unfused. prepack packs the Linear weights once (nn.Prepack). Errors
// are *models.InputError naming the option at fault ("name": the model).
func Classifiers(names []string, size, batch int, seed uint64, prepack bool) (cs []Classifier, err error) {
	batch = max(batch, 1)
	probe := min(batch, 2) // the images ActivationBytes runs
	entries := make([]*models.Entry, len(names))
	cfgs := make([]models.Config, len(names))
	var need models.Footprint // every model (and its folded copy) at the batch, before building any
	for i, name := range names {
		sz := ""
		if size > 0 {
			sz = fmt.Sprint(size)
		}
		e, cfg, err := models.Resolve(name, map[string]string{"size": sz})
		if err != nil {
			return nil, err
		}
		if e.Family.Task != models.TaskClassify {
			return nil, &models.InputError{Input: "name", Err: fmt.Errorf("%s is a %s model, not an image classifier", name, e.Family.Task)}
		}
		entries[i], cfgs[i] = e, cfg
		copies := int64(1)
		if cfg.NormSpec().Foldable() {
			copies = 2
		}
		f := models.Estimate(cfg, probe, false)
		need.Weights += copies * f.Weights
		need.Activations += copies * f.Activations
	}
	what := fmt.Sprintf("timing %s (with folded copies) at batch %d", strings.Join(names, ", "), batch)
	blame := "name"
	if size > 0 {
		what += fmt.Sprintf(" of %dx%d images", size, size)
		blame = "size"
	} else if batch > 1 && models.CheckFits(what, models.Footprint{Weights: need.Weights}) == nil {
		blame = "batch" // the weights fit: the batch's activations do not
	}
	if err := models.CheckFits(what, need); err != nil {
		return nil, &models.InputError{Input: blame, Err: err}
	}
	defer func() {
		if err == nil && batch > probe {
			err = measureBatch(cs, batch, what)
		}
	}()
	for i, name := range names {
		e, cfg := entries[i], cfgs[i]
		mm, err := models.Build(e.Family, cfg, seed)
		if err != nil {
			return nil, err
		}
		m := mm.(models.Classifier)
		if !cfg.NormSpec().Foldable() {
			cs = append(cs, Classifier{Name: name, Model: m})
			continue
		}
		RandomizeBuffers(m, seed)
		d, err := fuse.Copy(m)
		if err != nil {
			return nil, err
		}
		cs = append(cs, Classifier{Name: name, Model: d.(models.Classifier), Fused: true}, Classifier{Name: name + "/unfused", Model: m})
	}
	for _, c := range cs {
		if prepack {
			nn.Prepack(c.Model)
		}
	}
	return cs, nil
}

// measureBatch measures every classifier's buffers per image, records
// them (Classifier.ActBytes) and refuses batch when the models' buffers
// for it would not fit in the memory left.
func measureBatch(cs []Classifier, batch int, what string) error {
	var act int64
	for i := range cs {
		b, err := models.ActivationBytes(cs[i].Model)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", cs[i].Name, err)
		}
		cs[i].ActBytes = b
		act += b * int64(batch)
	}
	if err := models.CheckFits(what, models.Footprint{Activations: act}); err != nil {
		return &models.InputError{Input: "batch", Err: err}
	}
	return nil
}

// Decoders builds the named registry language models with random weights
// (from seed) and a vocabulary of vocab tokens (0: each model's own),
// folded when fold is set and their norms fold. Errors are
// *models.InputError naming the option at fault ("name": the model).
func Decoders(names []string, vocab int, seed uint64, fold bool) ([]Decoder, error) {
	var ds []Decoder
	for _, name := range names {
		e, c, err := models.Resolve(name, nil)
		if err != nil {
			return nil, err
		}
		if e.Family.Task != models.TaskLM {
			return nil, &models.InputError{Input: "name", Err: fmt.Errorf("%s is a %s model, not a language model", name, e.Family.Task)}
		}
		if vocab > 0 {
			if err := c.Set("vocab", strconv.Itoa(vocab)); err != nil {
				return nil, &models.InputError{Input: "vocab", Err: err}
			}
		}
		mm, err := models.Build(e.Family, c, seed)
		if err != nil {
			return nil, err
		}
		m, ok := mm.(models.Decoder)
		if !ok {
			return nil, fmt.Errorf("%s (%s) does not generate", name, e.Family.Name)
		}
		m.DropGrads()
		d := Decoder{Name: models.ConfigName(c), Norm: c.NormSpec().Kind, Model: m}
		if fold && c.NormSpec().Foldable() {
			if err := fuse.Fold(m); err != nil {
				return nil, err
			}
			d.Folded = true
		}
		ds = append(ds, d)
	}
	return ds, nil
}
