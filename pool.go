package slab

import (
	"context"
	"fmt"
	"image"

	"github.com/slabml/slab/tensor"
)

// Pool serves concurrent requests with n independent copies of one model:
// each call borrows a free copy (waiting for one when all are busy) and
// returns it when done, so up to n forwards run at once. The copies hold
// the weights n times. A Pool is safe for concurrent use.
type Pool struct {
	free   chan *Model
	models []*Model
}

// NewPool returns a pool of n copies of m (m itself is the first one, so
// do not call m's methods concurrently with the pool's if you count on n
// parallel forwards).
func NewPool(m *Model, n int) (*Pool, error) {
	if n < 1 {
		return nil, fmt.Errorf("slab: pool size must be at least 1, got %d", n)
	}
	p := &Pool{free: make(chan *Model, n), models: []*Model{m}}
	for len(p.models) < n {
		c, err := m.clone()
		if err != nil {
			return nil, err
		}
		p.models = append(p.models, c)
	}
	for _, c := range p.models {
		p.free <- c
	}
	return p, nil
}

// Size is the number of model copies.
func (p *Pool) Size() int { return len(p.models) }

// Do runs f with a free model copy, waiting for one until ctx is done.
// f has the copy to itself until it returns.
func (p *Pool) Do(ctx context.Context, f func(m *Model) error) error {
	select {
	case m := <-p.free:
		defer func() { p.free <- m }()
		return f(m)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Classify is Model.Classify on a free copy.
func (p *Pool) Classify(ctx context.Context, images []image.Image, k int) (out [][]Prediction, err error) {
	err = p.Do(ctx, func(m *Model) error {
		out, err = m.Classify(images, k)
		return err
	})
	return out, err
}

// Logits is Model.Logits on a free copy.
func (p *Pool) Logits(ctx context.Context, x *tensor.Tensor) (out *tensor.Tensor, err error) {
	err = p.Do(ctx, func(m *Model) error {
		out, err = m.Logits(x)
		return err
	})
	return out, err
}

// Generate is Model.Generate on a free copy.
func (p *Pool) Generate(ctx context.Context, prompt string, o GenerateOptions) (text string, err error) {
	err = p.Do(ctx, func(m *Model) error {
		text, err = m.Generate(ctx, prompt, o)
		return err
	})
	return text, err
}
