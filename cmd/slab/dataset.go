package main

import (
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/train"
)

// openImages opens the training (trainSplit) or test split of a labelled
// image data set from dir (or its installed location when dir is empty),
// optionally truncated to its first limit images. *data.Dataset already
// has the shape of train.Dataset, including seeded crop+flip augmentation.
func openImages(name, dir string, trainSplit bool, limit int) (train.Dataset, error) {
	split := "test"
	if trainSplit {
		split = "train"
	}
	ds, err := data.LoadDir(name, split, dir)
	if err != nil {
		return nil, flagErr("data", "%v", err)
	}
	return ds.Subset(limit), nil
}

// checkDataFits verifies that the data set's images fit the model's input
// and its labels the model's head.
func checkDataFits(ds train.Dataset, m models.Classifier, name string) error {
	c, h, w := ds.Shape()
	mc, mh, mw := m.InputShape()
	classes := m.Classes()
	if c != mc || h != mh || w != mw {
		return flagErr("data", "%s images are %dx%dx%d but the model takes %dx%dx%d", name, c, h, w, mc, mh, mw)
	}
	if d, ok := ds.(interface{ NumClasses() int }); ok && d.NumClasses() > classes {
		return flagErr("data", "%s has %d classes but the model's head has %d", name, d.NumClasses(), classes)
	}
	return nil
}
