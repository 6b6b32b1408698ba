package slab

import "github.com/slabml/slab/models"

// Wrap prepares a model already in memory (built, loaded or imported
// through package models) for inference, as Load does for a file. meta is
// the metadata a checkpoint would carry (a language model's tokenizer;
// nil: none, then Generate is refused and TokenLogits works). The Model
// takes m over: do not use m afterwards except through Underlying.
func Wrap(m models.Model, meta map[string]string, opts ...Option) (*Model, error) {
	o, err := loadOptions(opts)
	if err != nil {
		return nil, err
	}
	if meta == nil {
		meta = map[string]string{}
	}
	r := &Model{m: m, meta: meta, opts: o, lenient: true}
	r.path = r.Name()
	if err := r.prepare(); err != nil {
		return nil, err
	}
	return r, nil
}
