package slab

import (
	"fmt"
	"image"
	"math"
	"os"
	"sort"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/tensor"
)

// Prediction is one of the most probable classes of an image.
type Prediction struct {
	// Class is the logit index, Name its label ("class N" when the model's
	// classes have no names).
	Class int
	Name  string
	// Prob is the softmax probability over all classes, Logit the raw score.
	Prob, Logit float64
}

// MaxImagePixels bounds the pixels of an image file ClassifyFiles decodes
// (checked from its header before decoding): a 1.2 MB PNG can claim
// 20000x20000 pixels, 1.6 GB once decoded. 2^25 is a 32-megapixel photo.
const MaxImagePixels = 1 << 25

// Classify returns the k most probable classes of each image, most
// probable first. Images are preprocessed as the model was evaluated:
// 3-channel models get DeiT's ImageNet transform (bicubic resize to
// size/0.875, centre crop, ImageNet mean and std; bit-exact with
// torchvision on PIL images), 1-channel models a grayscale resize and the
// data set's normalisation (see Dataset).
func (r *Model) Classify(images []image.Image, k int) ([][]Prediction, error) {
	return r.classify(len(images), k, func(i int) (image.Image, error) { return images[i], nil })
}

// ClassifyFiles decodes JPEG or PNG files and classifies them (see
// Classify); errors name the file. Each file's size in pixels is read from
// its header and bounded (MaxImagePixels, and the memory available)
// before it is decoded, and only one decoded image is held at a time.
func (r *Model) ClassifyFiles(paths []string, k int) ([][]Prediction, error) {
	for _, p := range paths { // a missing file is named before anything else
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	return r.classify(len(paths), k, func(i int) (image.Image, error) {
		if err := checkImageFile(paths[i]); err != nil {
			return nil, err
		}
		return data.LoadImage(paths[i])
	})
}

// classify preprocesses images 0..n-1, got one at a time, into one batch
// and returns the top k classes of each.
func (r *Model) classify(n, k int, get func(i int) (image.Image, error)) ([][]Prediction, error) {
	m, ok := r.m.(models.Classifier)
	if !ok {
		return nil, fmt.Errorf("slab: %s is a %s model, not an image classifier", r.Name(), r.Family())
	}
	if k <= 0 || k > m.Classes() {
		return nil, fmt.Errorf("slab: k must be in 1..%d, got %d", m.Classes(), k)
	}
	c, h, w := m.InputShape()
	per := c * h * w
	x := tensor.New(n, c, h, w)
	for i := range n {
		img, err := get(i)
		if err != nil {
			return nil, err
		}
		if err := r.pre.Apply(img, x.Data[i*per:(i+1)*per]); err != nil {
			return nil, fmt.Errorf("slab: image %d: %w", i, err)
		}
	}
	r.mu.Lock()
	logits, err := r.logits(m, x)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	classes := m.Classes()
	out := make([][]Prediction, n)
	for i := range out {
		out[i] = topK(logits.Data[i*classes:(i+1)*classes], k, r.names)
	}
	return out, nil
}

// checkImageFile refuses an image whose header claims more pixels than
// MaxImagePixels or than decoding it would fit in the memory available
// (about 16 bytes a pixel: the decoded image and the preprocessing's
// float copy). Files whose header does not decode are left to the
// decoder's own error.
func checkImageFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // data.LoadImage reports it
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if px > MaxImagePixels {
		return fmt.Errorf("slab: %s: image of %dx%d pixels (%.1f megapixels) is above the bound of %d megapixels", path, cfg.Width, cfg.Height, float64(px)/1e6, MaxImagePixels>>20)
	}
	what := fmt.Sprintf("slab: %s: decoding %dx%d pixels", path, cfg.Width, cfg.Height)
	return models.CheckFits(what, models.Footprint{Activations: 16 * px})
}

// preprocessFor picks the eval transform and class names of a classifier:
// ImageNet's for 3-channel models, the named 28x28 data set's for
// 1-channel ones.
func preprocessFor(m models.Classifier, dataset string) (data.Preprocess, []string, error) {
	ch, size, w := m.InputShape()
	classes := m.Classes()
	if size != w {
		return data.Preprocess{}, nil, fmt.Errorf("the model takes %dx%d inputs; only square inputs are preprocessed", size, w)
	}
	if ch == 3 {
		names := data.ImageNetClasses[:]
		if classes != len(names) {
			names = nil
		}
		return data.ImageNetEval(size), names, nil
	}
	if ch != 1 {
		return data.Preprocess{}, nil, fmt.Errorf("the model takes %d channels; only 1 and 3 are preprocessed", ch)
	}
	var mean, std float32
	var names []string
	switch dataset {
	case "fashion-mnist":
		mean, std, names = 0.2860, 0.3530, data.FashionMNISTClasses
	case "mnist":
		mean, std, names = 0.1307, 0.3081, data.MNISTClasses
	default:
		return data.Preprocess{}, nil, fmt.Errorf("unknown data set %q (fashion-mnist or mnist)", dataset)
	}
	if classes != len(names) {
		names = nil
	}
	return data.Preprocess{Resize: size, Crop: size, Mean: []float32{mean}, Std: []float32{std}, Gray: true}, names, nil
}

// topK returns the k most probable classes (softmax over all logits, in
// float64), ties broken by the lower index.
func topK(logits []float32, k int, names []string) []Prediction {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	out := make([]Prediction, k)
	for i := range out {
		j := idx[i]
		name := fmt.Sprintf("class %d", j)
		if j < len(names) {
			name = names[j]
		}
		out[i] = Prediction{Class: j, Name: name, Prob: math.Exp(float64(logits[j])-mx) / sum, Logit: float64(logits[j])}
	}
	return out
}
