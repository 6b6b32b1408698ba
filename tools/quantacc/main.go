// Command quantacc measures the accuracy cost of quantized checkpoints on
// an image classifier (docs/bench-lowprec.md): the float32 weights file
// and its bf16 and int8 files (slab quantize) are each evaluated on the
// whole test split, and every quantized variant is compared with float32
// image by image: top-1, test loss, the share of images whose predicted
// class is the same as float32's (agreement), and the logits' relative
// error (L2 over the whole split).
//
//	slab quantize --weights fused.safetensors --dtype bf16 --out fused_bf16.safetensors
//	slab quantize --weights fused.safetensors --dtype int8 --out fused_int8.safetensors
//	go run ./tools/quantacc -weights fused.safetensors,fused_bf16.safetensors,fused_int8.safetensors
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/train"
)

// recorder keeps every logit row a classifier produces, in order.
type recorder struct {
	m      models.Classifier
	logits []float32
}

func (r *recorder) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	y, err := r.m.Forward(x, mode)
	if err == nil {
		r.logits = append(r.logits, y.Data...)
	}
	return y, err
}

// row is one file's result.
type row struct {
	Weights   string  `json:"weights"`
	Dtype     string  `json:"dtype"`
	Images    int     `json:"images"`
	Top1      float64 `json:"top1"`
	Loss      float64 `json:"loss"`
	Agreement float64 `json:"agreement_with_first"`
	LogitErr  float64 `json:"logit_rel_err_vs_first"`
}

func main() {
	files := flag.String("weights", "", "comma list of weights files; the first is the reference (float32)")
	dataName := flag.String("data", "fashion-mnist", "data set")
	dataDir := flag.String("data-dir", "", "its directory (default: the data set's)")
	batch := flag.Int("batch", 250, "images per forward")
	jsonOut := flag.Bool("json", false, "one JSON object per file")
	flag.Parse()
	test, err := train.OpenImages(*dataName, *dataDir, "test", 0)
	if err != nil {
		fail(err)
	}
	var ref []float32
	var classes int
	for _, path := range strings.Split(*files, ",") {
		mm, _, _, err := models.Load(path)
		if err != nil {
			fail(err)
		}
		m, ok := mm.(models.Classifier)
		if !ok {
			fail(fmt.Errorf("%s is not an image classifier", path))
		}
		m.DropGrads()
		nn.Prepack(m)
		dt, _ := nn.StoredDtype(m)
		rec := &recorder{m: m}
		loss, acc, err := train.Evaluate(rec, test, *batch, nil, nil, nil)
		if err != nil {
			fail(err)
		}
		r := row{Weights: path, Dtype: dt.String(), Images: test.Len(), Top1: 100 * acc, Loss: loss}
		if ref == nil {
			ref, classes = rec.logits, m.Classes()
			if dt != kernels.F32 {
				fmt.Fprintf(os.Stderr, "quantacc: the reference %s is %v, not float32\n", path, dt)
			}
		}
		if len(rec.logits) != len(ref) {
			fail(fmt.Errorf("%s: %d logits, the reference %d", path, len(rec.logits), len(ref)))
		}
		same := 0
		var num, den float64
		for i := 0; i < len(ref); i += classes {
			if argmax(ref[i:i+classes]) == argmax(rec.logits[i:i+classes]) {
				same++
			}
			for j := i; j < i+classes; j++ {
				d := float64(rec.logits[j]) - float64(ref[j])
				num += d * d
				den += float64(ref[j]) * float64(ref[j])
			}
		}
		r.Agreement = 100 * float64(same) / float64(len(ref)/classes)
		r.LogitErr = math.Sqrt(num / den)
		if *jsonOut {
			json.NewEncoder(os.Stdout).Encode(r)
			continue
		}
		fmt.Printf("%-45s %-5s %6d images  top-1 %6.2f %%  loss %.5f  agreement %6.2f %%  logit rel. err %.2e\n",
			r.Weights, r.Dtype, r.Images, r.Top1, r.Loss, r.Agreement, r.LogitErr)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "quantacc:", err)
	os.Exit(1)
}
