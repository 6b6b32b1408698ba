// Package bench times models the way slab bench and slab bench-lm report
// them: several models interleaved round by round (so that every model
// sees the same machine state on a shared machine), medians over the
// rounds, ratios to the first model, and for decoders the DRAM read rate
// their weight stream is held against. The result structs are the JSON the
// commands print; their field names are relied on by scripts and docs.
package bench
