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

// checkDataFits verifies that the data set fits the model (train.CheckFits).
func checkDataFits(ds train.Dataset, m models.Classifier, name string) error {
	if err := train.CheckFits(ds, m, name); err != nil {
		return flagErr("data", "%v", err)
	}
	return nil
}
