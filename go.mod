module github.com/slabml/slab

go 1.26
