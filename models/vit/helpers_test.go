package vit_test

import (
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models/vit"
)

// foldVit returns a folded copy of a vit model.
func foldVit(m *vit.Model) (*vit.Model, error) {
	d, err := fuse.Copy(m)
	if err != nil {
		return nil, err
	}
	return d.(*vit.Model), nil
}
