// Package train is slab's training loop for the vision models: AdamW as
// PyTorch defines it, the timm per-iteration warm-up + cosine schedule,
// label-smoothed cross-entropy, global-norm gradient clipping, per-epoch
// evaluation in eval mode (the pure RepBN path), the end-of-training
// BatchNorm re-calibration of docs/method.md 1.4, safetensors checkpoints with
// exact resume, and progress/curve output (bar or log lines, JSON lines,
// PNG plot).
//
// Design choices:
//
//   - The trainer sees the model and the data through two small interfaces
//     (Model, Dataset) that *vit.Model and *data.Dataset satisfy. The loop
//     can then be tested on a toy model in milliseconds, and the loop does
//     not care which norm or attention the model uses: the PRepBN schedule
//     lives in the model's LinearNorm buffers, the trainer only sets its
//     length T (default 0.8 x all steps, docs/method.md 1.3 and the official repository's issue #6) once.
//   - Reproducibility is by construction rather than by saving every
//     stream: the data order of epoch e comes from a PCG seeded with
//     (seed, e) and drop path is reseeded from (seed, step) every step, so
//     a run resumed at any step (mid-epoch included) replays the same
//     batches and masks. Only the augmentation stream is a running PCG, and
//     its state (math/rand/v2 PCG marshals) is checkpointed. Same seed and
//     same thread count give bit-identical parameters; tests compare with ==.
//   - A checkpoint is one safetensors file holding parameters and buffers
//     under their official names (so it doubles as a weights file), the
//     AdamW moments, and the scalar state and configs as JSON metadata,
//     written atomically by package checkpoint (temp file + rename).
//   - AdamW keeps float32 moments like PyTorch; the bias corrections are
//     computed once per step in float64. The update is elementwise and
//     memory bound, so it is split across threads only for large tensors.
//   - Throughput is measured over training steps only (data loading
//     included, evaluation excluded); GFLOP/s uses 3 x the model's forward
//     FLOPs per image, the usual estimate for forward + backward.
package train
