package bench

import (
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// TestClassifiersWithDtypes: every variant in every dtype, in order, named
// name/dtype; Classify's rows carry the dtype; a variant's state switched
// in (as Classify does before each run) gives the logits of a model
// quantized to that dtype alone, whatever ran before it.
func TestClassifiersWithDtypes(t *testing.T) {
	cs, err := Classifiers([]string{"slab_deit_mini_28"}, 0, 1, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	dts := []kernels.Dtype{kernels.F32, kernels.BF16, kernels.Int8}
	vs, err := ClassifiersWithDtypes(cs, dts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"slab_deit_mini_28/f32", "slab_deit_mini_28/bf16", "slab_deit_mini_28/int8",
		"slab_deit_mini_28/unfused/f32", "slab_deit_mini_28/unfused/bf16", "slab_deit_mini_28/unfused/int8"}
	if len(vs) != len(want) {
		t.Fatalf("%d variants, want %d", len(vs), len(want))
	}
	res, err := Classify(vs, ClassifyOptions{Batch: 2, Rounds: 1, Warmup: 0, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		if r.Model != want[i] || r.Dtype != dts[i%3].String() {
			t.Errorf("row %d: %s dtype %s, want %s %v", i, r.Model, r.Dtype, want[i], dts[i%3])
		}
	}
	x := tensor.New(2, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = float32(i%13)/6 - 1
	}
	// int8 last ran; switch back to each dtype out of order.
	for _, i := range []int{1, 0, 2} {
		v := vs[i]
		nn.SetQuant(v.Model, v.Quant)
		y, err := v.Model.Forward(x, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), y.Data...)
		ref, err := models.Clone(v.Model)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nn.Quantize(ref, dts[i]); err != nil {
			t.Fatal(err)
		}
		nn.Prepack(ref) // as Classifiers does
		r := ref.(models.Classifier)
		yr, err := r.Forward(x, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		for j, w := range yr.Data {
			if got[j] != w {
				t.Fatalf("%s: logit %d = %v switched in, %v quantized alone", v.Name, j, got[j], w)
			}
		}
	}
	if one, _ := ClassifiersWithDtypes(cs, []kernels.Dtype{kernels.F32}); len(one) != len(cs) || one[0].Name != cs[0].Name {
		t.Error("f32 alone renamed or multiplied the variants")
	}
}
