package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// TestClassify checks slab classify end to end on a 224 ImageNet model and
// a 28x28 one: the printed top-k must be the model's own softmax over the
// logits of the preprocessed image (preprocessing itself is tested against
// torchvision in package data).
func TestClassify(t *testing.T) {
	imgDir := filepath.Join("..", "..", "data", "testdata", "imagenet")
	images := []string{filepath.Join(imgDir, "land.png"), filepath.Join(imgDir, "tall.jpg")}
	for _, name := range []string{"slab_deit_tiny", "slab_deit_mini_28"} {
		m := officialModel(t, name)
		w := filepath.Join(t.TempDir(), name+".safetensors")
		if err := checkpoint.Write(w, mustWeightsFile(t, m)); err != nil {
			t.Fatal(err)
		}
		js, err := runIn(t, append([]string{"classify", "--weights", w, "--top", "3", "--json"}, images...)...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var r classifyResult
		if err := json.Unmarshal([]byte(js), &r); err != nil || len(r.Images) != 2 {
			t.Fatalf("%s: classify --json printed %q (%v)", name, js, err)
		}
		p, names, _ := preprocessFor(m, "fashion-mnist")
		c := m.Cfg
		for i, path := range images {
			img, err := data.LoadImage(path)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(1, c.InChans, c.ImgSize, c.ImgSize)
			if err := p.Apply(img, x.Data); err != nil {
				t.Fatal(err)
			}
			y, err := m.Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			want := topK(y.Data, 3, names)
			got := r.Images[i].Top
			for k := range want {
				if got[k].Class != want[k].Class || got[k].Name != want[k].Name || math.Abs(got[k].Prob-want[k].Prob) > 1e-5 {
					t.Errorf("%s %s: top %d = %+v, want %+v", name, path, k, got[k], want[k])
				}
				if k > 0 && got[k].Prob > got[k-1].Prob {
					t.Errorf("%s: top-k not sorted", name)
				}
			}
			t.Logf("%s %s: %q %.3f", name, filepath.Base(path), got[0].Name, got[0].Prob)
		}
		if c.Classes == 1000 && r.Images[0].Top[0].Name != data.ImageNetClasses[r.Images[0].Top[0].Class] {
			t.Errorf("ImageNet names not used")
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"classify", "--weights", "x"}, "IMAGE"},
		{[]string{"classify", images[0]}, "--weights"},
		{[]string{"classify", "--weights", images[0], images[0]}, "--weights"},
	}
	for _, c := range bad {
		if _, err := runIn(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
