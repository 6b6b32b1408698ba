package slab_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"

	"github.com/slabml/slab"
)

// Classify images with a committed classifier (slab_deit_tiny's layout at
// 224px, width 24, depth 1, random weights from our PyTorch reference: the
// classes and probabilities are PyTorch's, see
// testdata/reference/classify_w24.json).
func ExampleModel_Classify() {
	m, err := slab.Load("testdata/api/classify_w24.safetensors", slab.Fold())
	if err != nil {
		log.Fatal(err)
	}
	preds, err := m.ClassifyFiles([]string{"data/testdata/imagenet/land.png", "data/testdata/imagenet/gray.png"}, 3)
	if err != nil {
		log.Fatal(err)
	}
	for i, p := range preds {
		fmt.Printf("image %d:", i)
		for _, c := range p {
			name, _, _ := strings.Cut(c.Name, ",")
			fmt.Printf("  %s (%d) %.3f", name, c.Class, c.Prob)
		}
		fmt.Println()
	}
	// Output:
	// image 0:  hair slide (584) 0.191  holster (597) 0.079  prairie chicken (83) 0.070
	// image 1:  milk can (653) 0.034  abaya (399) 0.023  slug (114) 0.021
}

// Generate text greedily (deterministic) with a committed tiny byte-level
// language model (lm_test_prepbn, trained 4 steps: it has not learned
// much).
func ExampleModel_Generate() {
	m, err := slab.Load("testdata/compat/old_lm.safetensors", slab.Fold())
	if err != nil {
		log.Fatal(err)
	}
	text, err := m.Generate(context.Background(), "Fellow citizens", slab.GenerateOptions{Tokens: 12})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, folded %v: %q\n", m.Name(), m.Folded(), text)
	// Output:
	// lm_test_prepbn, folded true: "H\xa6\xe2K\x9b-\x14\xeaK\x9b-\x14"
}

// Serve concurrent requests: a Pool of two copies of the model runs two
// forwards at a time; every goroutine gets the same answer as a lone call.
func ExamplePool() {
	m, err := slab.Load("testdata/api/classify_w24.safetensors", slab.Fold())
	if err != nil {
		log.Fatal(err)
	}
	pool, err := slab.NewPool(m, 2)
	if err != nil {
		log.Fatal(err)
	}
	files := []string{"data/testdata/imagenet/land.png", "data/testdata/imagenet/small_rgba.png", "data/testdata/imagenet/gray.png"}
	top := make([]slab.Prediction, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := pool.Do(context.Background(), func(m *slab.Model) error {
				p, err := m.ClassifyFiles([]string{f}, 1)
				if err == nil {
					top[i] = p[0][0]
				}
				return err
			})
			if err != nil {
				log.Fatal(err)
			}
		}()
	}
	wg.Wait()
	for i, p := range top {
		fmt.Printf("%s: %d %s\n", files[i], p.Class, p.Name)
	}
	// Output:
	// data/testdata/imagenet/land.png: 584 hair slide
	// data/testdata/imagenet/small_rgba.png: 584 hair slide
	// data/testdata/imagenet/gray.png: 653 milk can
}
