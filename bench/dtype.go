package bench

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// ClassifiersWithDtypes returns every classifier of cs in every dtype (slab
// bench --dtype f32,bf16,int8), in that order: one model per variant,
// quantized once per dtype with its float32 weights kept
// (nn.QuantOptions.Keep), its state switched (nn.SetQuant) before each of
// its runs, so that the dtypes of a model are interleaved round by round
// like the models. Variants are named name/dtype unless the only dtype is
// f32.
func ClassifiersWithDtypes(cs []Classifier, dtypes []kernels.Dtype) ([]Classifier, error) {
	if len(dtypes) == 0 || (len(dtypes) == 1 && dtypes[0] == kernels.F32) {
		return cs, nil
	}
	var out []Classifier
	for _, c := range cs {
		for _, dt := range dtypes {
			if _, err := nn.QuantizeWith(c.Model, dt, nn.QuantOptions{Keep: true}); err != nil {
				return nil, fmt.Errorf("%s: %v", c.Name, err)
			}
			q := c
			q.Name, q.Dtype, q.Quant = c.Name+"/"+dt.String(), dt.String(), nn.GetQuant(c.Model)
			out = append(out, q)
		}
	}
	return out, nil
}
