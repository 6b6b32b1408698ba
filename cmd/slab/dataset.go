package main

import (
	"fmt"

	"github.com/slabml/slab/train"
)

// openImages opens the training (train=true) or test split of a labelled
// image dataset, optionally truncated to its first limit images.
func openImages(name, dir string, trainSplit bool, limit int) (train.Dataset, error) {
	return nil, fmt.Errorf("flag --data: %q: image datasets are not available yet", name)
}

// checkDataFits verifies that the dataset's images and labels fit the
// model's input.
func checkDataFits(ds train.Dataset, inChans, img, classes int, name string) error {
	c, h, w := ds.Shape()
	if c != inChans || h != img || w != img {
		return fmt.Errorf("flag --data: %s images are %dx%dx%d but the model takes %dx%dx%d", name, c, h, w, inChans, img, img)
	}
	return nil
}
