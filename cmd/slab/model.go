package main

import (
	"fmt"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all" // every family, linked in one place
)

// The commands reach models only through package models: a family is
// linked in by models/all and never named here.

// resolveModel looks name up in the registry and applies option overrides
// (flag name -> value; empty values are skipped), naming the flag at fault.
func resolveModel(name string, opts map[string]string) (*models.Entry, models.Config, error) {
	e, c, err := models.Resolve(name, opts)
	return e, c, modelErr(err, "")
}

// nameOf is the registry name a model's config records.
func nameOf(m models.Model) string { return configName(m.Config()) }

func configName(c models.Config) string { return models.ConfigName(c) }

// normOf is the kind of every norm of m ("none" once folded).
func normOf(m models.Model) string { return m.Config().NormSpec().Kind }

// loadedModel is a classifier rebuilt from a slab weights or training file.
type loadedModel struct {
	Model models.Classifier
	File  *checkpoint.File
	Path  string
}

// loadModel rebuilds the classifier stored in a slab checkpoint (training
// or weights file, any family); warnings go to stderr.
func loadModel(path string) (*loadedModel, error) {
	m, f, warns, err := models.Load(path)
	if err != nil {
		return nil, err
	}
	warn(warns)
	c, ok := m.(models.Classifier)
	if !ok {
		return nil, fmt.Errorf("%s holds %s, a %s model, not an image classifier", path, nameOf(m), m.Family())
	}
	return &loadedModel{Model: c, File: f, Path: path}, nil
}

// foldCopy returns a folded copy of a classifier.
func foldCopy(m models.Classifier) (models.Classifier, error) {
	d, err := fuse.Copy(m)
	if err != nil {
		return nil, err
	}
	return d.(models.Classifier), nil
}

// foldable reports whether fuse.Fold accepts m.
func foldable(c models.Config) bool { return c.NormSpec().Foldable() }
