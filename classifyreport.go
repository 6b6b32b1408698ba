package slab

import (
	"fmt"
	"io"

	"github.com/slabml/slab/data"
)

// ClassifyReport is the top-k classes of a list of image files, as slab
// classify reports them (its JSON).
type ClassifyReport struct {
	Model  string        `json:"model"`
	Norm   string        `json:"norm"`
	Resize int           `json:"resize"`
	Crop   int           `json:"crop"`
	Images []ImageReport `json:"images"`
}

// ImageReport is the result for one image.
type ImageReport struct {
	Path string             `json:"path"`
	Top  []PredictionReport `json:"top"`
}

// PredictionReport is a Prediction as JSON.
type PredictionReport struct {
	Class int     `json:"class"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
	Logit float64 `json:"logit"`
}

// NewClassifyReport gathers ClassifyFiles' predictions preds of paths by a
// model named model with norms norm, taking ch-channel images of side
// size (3-channel ones resized first as data.ImageNetEval).
func NewClassifyReport(model, norm string, ch, size int, paths []string, preds [][]Prediction) *ClassifyReport {
	res := &ClassifyReport{Model: model, Norm: norm, Resize: size, Crop: size}
	if ch == 3 {
		res.Resize = data.ImageNetEval(size).Resize
	}
	for i, path := range paths {
		im := ImageReport{Path: path}
		for _, p := range preds[i] {
			im.Top = append(im.Top, PredictionReport{Class: p.Class, Name: p.Name, Prob: p.Prob, Logit: p.Logit})
		}
		res.Images = append(res.Images, im)
	}
	return res
}

// WriteText prints each image's path, then its classes with their
// probabilities.
func (r *ClassifyReport) WriteText(w io.Writer) {
	for _, im := range r.Images {
		fmt.Fprintf(w, "%s:\n", im.Path)
		for _, t := range im.Top {
			fmt.Fprintf(w, "  %6.2f%%  %4d  %s\n", 100*t.Prob, t.Class, t.Name)
		}
	}
}
