// Package checkpoint reads and writes the tensor file formats slab meets:
// safetensors and PyTorch's torch.save output (.pth/.pt: any state dict
// torch.save writes is read; WritePTH writes state dicts that torch.load
// reads, see pthwrite.go). It knows nothing of models: it turns bytes into named arrays
// and back, and each model owns the mapping from names to its parameters.
//
// Design choices:
//
//   - One in-memory form for both formats, File: a map of named Entry values
//     plus a string metadata map. Floating-point data of any stored precision
//     (F16, BF16, F32, F64) is widened to float32 on read, because slab
//     computes in float32 only; integer data (I64 counters such as iter,
//     total_step, num_batches_tracked) stays exact as int64. Entry.DType keeps
//     the stored dtype so a caller can tell a half-precision source.
//   - Reading a file loads it whole: slab's checkpoints are tens of MB, and a
//     single read lets every bounds check run against one byte slice. All
//     offsets, lengths and shapes found in a file are checked before use, so
//     a truncated or corrupt file yields an error naming the file (and the
//     tensor, where known), never a panic or an absurd allocation.
//   - Write is atomic: it writes a temporary file in the target directory,
//     fsyncs it and renames it over the target, so a crash or a full disk
//     never leaves a half-written checkpoint nor destroys the previous one.
//     Key order and layout are deterministic, so the same File always yields
//     the same bytes (useful for tests and for content hashes).
//   - The PyTorch reader does not execute pickles: its own small pickle VM
//     (pickle.go, which says why gopickle was not used) treats every global
//     as an inert name and "calls" only a closed allow-list (OrderedDict,
//     the torch._utils rebuild functions), so a malicious .pth cannot run
//     code, and every length in it is checked before anything is
//     allocated. Tensors are gathered by their strides from storages
//     decoded once, so transposed views and storages shared by several
//     tensors come out right, each as its own dense copy.
package checkpoint
