// Package checkpoint reads, checks and writes the files of a TensorFlow
// checkpoint without TensorFlow: the "checkpoint" state file, the bundle's
// .index (checked before TensorFlow's reader, which aborts the process on
// some damaged ones, sees it), the .meta's MetaGraphDef and its variables,
// a SavedModel's saved_model.pb and its "serve" MetaGraph, the op
// allowlist a graph from elsewhere must pass, and size-limited reads of
// files a user may be handed. It needs no cgo: its tests and fuzzers run
// with CGO_ENABLED=0.
package checkpoint
