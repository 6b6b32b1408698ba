package data

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type preprocessCase struct {
	Source   string    `json:"source"`
	Resize   int       `json:"resize"`
	Crop     int       `json:"crop"`
	Gray     bool      `json:"gray"`
	Expected string    `json:"expected"`
	Shape    []int     `json:"shape"`
	Sum      float64   `json:"sum"`
	SumSq    float64   `json:"sumsq"`
	First    []float64 `json:"first"`
}

// TestPreprocessMatchesTorchvision compares the eval transform with
// torchvision 0.14 + PIL 9.4 output (testdata/imagenet/gen_preprocess.py).
// PNG sources must match bit for bit; a JPEG may differ by the decoders
// (Go's image/jpeg vs libjpeg's IDCT and chroma upsampling), which is
// reported and bounded.
func TestPreprocessMatchesTorchvision(t *testing.T) {
	dir := filepath.Join("testdata", "imagenet")
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Cases []preprocessCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	for _, c := range exp.Cases {
		img, err := LoadImage(filepath.Join(dir, c.Source))
		if err != nil {
			t.Fatal(err)
		}
		p := ImageNetEval(c.Crop)
		p.Resize = c.Resize
		if c.Gray {
			p = Preprocess{Resize: c.Resize, Crop: c.Crop, Mean: []float32{0.2860}, Std: []float32{0.3530}, Gray: true}
		}
		got, err := p.Crop8(img)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := LoadImage(filepath.Join(dir, c.Expected))
		if err != nil {
			t.Fatal(err)
		}
		_, _, want := RGB8(ref)
		if c.Gray {
			want = toLuma(want)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d pixels, want %d", c.Source, len(got), len(want))
		}
		maxd, sumd, ndiff := 0, 0, 0
		for i := range got {
			d := int(got[i]) - int(want[i])
			d = max(d, -d)
			maxd, sumd = max(maxd, d), sumd+d
			if d != 0 {
				ndiff++
			}
		}
		mean := float64(sumd) / float64(len(got))
		// The normalised tensor against torchvision's summary figures.
		x := make([]float32, p.Channels()*c.Crop*c.Crop)
		if err := p.Apply(img, x); err != nil {
			t.Fatal(err)
		}
		var s, s2, firstd float64
		for i, v := range x {
			s += float64(v)
			s2 += float64(v) * float64(v)
			if i < len(c.First) {
				firstd = math.Max(firstd, math.Abs(float64(v)-c.First[i]))
			}
		}
		t.Logf("%-15s resize %3d crop %3d: %d of %d values differ, max %d/255, mean %.4f/255; tensor sum %.2f (torch %.2f), first-8 max diff %.2g",
			c.Source, c.Resize, c.Crop, ndiff, len(got), maxd, mean, s, c.Sum, firstd)
		if strings.HasSuffix(c.Source, ".png") {
			if maxd != 0 {
				t.Errorf("%s: PNG path differs from torchvision by up to %d/255", c.Source, maxd)
			}
			if rel := math.Abs(s-c.Sum) / math.Abs(c.Sum); rel > 1e-5 || math.Abs(s2-c.SumSq)/c.SumSq > 1e-5 || firstd > 1e-5 {
				t.Errorf("%s: normalised tensor sum %g / %g, sumsq %g / %g, first diff %g", c.Source, s, c.Sum, s2, c.SumSq, firstd)
			}
		} else if maxd > 4 || mean > 0.1 {
			t.Errorf("%s: JPEG path differs from torchvision by max %d mean %.2f levels", c.Source, maxd, mean)
		}
	}
}

func TestResizeIdentityAndErrors(t *testing.T) {
	src := make([]uint8, 7*5*3)
	for i := range src {
		src[i] = uint8(i * 7)
	}
	if got := ResizeBicubic(src, 7, 5, 3, 7, 5); string(got) != string(src) {
		t.Error("same-size resize changed pixels")
	}
	p := ImageNetEval(224)
	if p.Resize != 256 || p.Crop != 224 || p.Channels() != 3 {
		t.Errorf("ImageNetEval(224) = %+v", p)
	}
	if err := p.Apply(nil, make([]float32, 5)); err == nil {
		t.Error("short output accepted")
	}
	if _, err := LoadImage(filepath.Join("testdata", "imagenet", "expected.json")); err == nil || !strings.Contains(err.Error(), "expected.json") {
		t.Errorf("non-image: %v", err)
	}
	if len(ImageNetClasses) != 1000 || ImageNetClasses[0] != "tench, Tinca tinca" || ImageNetClasses[999] != "toilet tissue, toilet paper, bathroom tissue" {
		t.Errorf("class names: %q ... %q", ImageNetClasses[0], ImageNetClasses[999])
	}
}
