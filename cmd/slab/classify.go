package main

import (
	"fmt"
	"math"
	"sort"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

func init() {
	register(&command{Name: "classify", Summary: "top-k classes of JPEG/PNG images (ImageNet eval preprocessing)", Run: runCmd(cmdClassify)})
}

// classifyPrediction is one of the top-k classes of an image.
type classifyPrediction struct {
	Class int     `json:"class"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
	Logit float64 `json:"logit"`
}

// classifyImage is the result for one image.
type classifyImage struct {
	Path string               `json:"path"`
	Top  []classifyPrediction `json:"top"`
}

// classifyResult is the JSON of slab classify.
type classifyResult struct {
	Model  string          `json:"model"`
	Norm   string          `json:"norm"`
	Resize int             `json:"resize"`
	Crop   int             `json:"crop"`
	Images []classifyImage `json:"images"`
}

func cmdClassify(args []string) error {
	fs := newFlags("classify", "classify --weights FILE [--model NAME] [--top K] [--data SET] [--fuse] [--json] IMAGE...")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	model := fs.String("model", "", "registry name (required for official .pth or config-less weights)")
	weights := fs.String("weights", "", "slab weights/checkpoint, safetensors state dict or official .pth")
	top := fs.Int("top", 5, "number of classes to print per image")
	dataName := fs.String("data", "fashion-mnist", "class names and normalisation of a 1-channel model: fashion-mnist or mnist (3-channel models use ImageNet's)")
	doFuse := fs.Bool("fuse", false, "fold the norms into the Linears first (deploy model)")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	images, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *weights == "" {
		return flagErr("weights", "is required")
	}
	if len(images) == 0 {
		return fmt.Errorf("no IMAGE given")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	m, warnings, err := openWeights(*weights, *model, *doFuse)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	p, names, err := preprocessFor(m, *dataName)
	if err != nil {
		return err
	}
	classes := m.Classes()
	if *top <= 0 || *top > classes {
		return flagErr("top", "must be in 1..%d, got %d", classes, *top)
	}
	nn.Prepack(m) // inference only: the weights are final
	ch, h, w := m.InputShape()
	x := tensor.New(len(images), ch, h, w)
	per := ch * h * w
	for i, path := range images {
		img, err := data.LoadImage(path)
		if err != nil {
			return err
		}
		if err := p.Apply(img, x.Data[i*per:(i+1)*per]); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	logits, err := forwardAll(m.Forward, x, 16, classes)
	if err != nil {
		return err
	}
	res := classifyResult{Model: nameOf(m), Norm: normOf(m), Resize: p.Resize, Crop: p.Crop}
	for i, path := range images {
		res.Images = append(res.Images, classifyImage{Path: path, Top: topK(logits.Data[i*classes:(i+1)*classes], *top, names)})
	}
	if *jsonOut {
		return emitJSON(res)
	}
	for _, im := range res.Images {
		fmt.Fprintf(stdout, "%s:\n", im.Path)
		for _, t := range im.Top {
			fmt.Fprintf(stdout, "  %6.2f%%  %4d  %s\n", 100*t.Prob, t.Class, t.Name)
		}
	}
	return nil
}

// preprocessFor picks the eval transform and class names of a model:
// ImageNet's for 3-channel models (resize to size/0.875, centre crop), the
// named 28x28 data set's for 1-channel ones (resize to the model size).
func preprocessFor(m models.Classifier, dataName string) (data.Preprocess, []string, error) {
	inChans, size, w := m.InputShape()
	classes := m.Classes()
	if size != w {
		return data.Preprocess{}, nil, fmt.Errorf("%s takes %dx%d inputs; classify handles square ones", nameOf(m), size, w)
	}
	if inChans == 3 {
		names := data.ImageNetClasses[:]
		if classes != len(names) {
			names = nil
		}
		return data.ImageNetEval(size), names, nil
	}
	if inChans != 1 {
		return data.Preprocess{}, nil, fmt.Errorf("%s takes %d channels; classify handles 1 and 3", nameOf(m), inChans)
	}
	var mean, std float32
	var names []string
	switch dataName {
	case "fashion-mnist":
		mean, std, names = 0.2860, 0.3530, data.FashionMNISTClasses
	case "mnist":
		mean, std, names = 0.1307, 0.3081, data.MNISTClasses
	default:
		return data.Preprocess{}, nil, flagErr("data", "unknown data set %q (fashion-mnist or mnist)", dataName)
	}
	if classes != len(names) {
		names = nil
	}
	return data.Preprocess{Resize: size, Crop: size, Mean: []float32{mean}, Std: []float32{std}, Gray: true}, names, nil
}

// topK returns the k most probable classes (softmax over all logits).
func topK(logits []float32, k int, names []string) []classifyPrediction {
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
	out := make([]classifyPrediction, k)
	for i := range out {
		j := idx[i]
		name := fmt.Sprintf("class %d", j)
		if j < len(names) {
			name = names[j]
		}
		out[i] = classifyPrediction{Class: j, Name: name, Prob: math.Exp(float64(logits[j])-mx) / sum, Logit: float64(logits[j])}
	}
	return out
}
