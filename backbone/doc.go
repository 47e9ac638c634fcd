// Package backbone holds what a pretrained backbone is for tfcat's transfer
// learning, and how it is read and analysed: the feature extractor a head
// is trained on (Backbone), read from a SavedModel (Open, with Options; its
// refusals are an *Error naming the folder) or back from a tfcat
// checkpoint's graph, where it lies under Prefix (FromGraph).
//
// A SavedModel's graph is mostly function calls; InlineFunctions replaces
// them by their bodies so that gradients reach the variables read inside.
// On the inlined graph, Layers orders the backbone's trainable variables
// and layers from its input to its output, FineTuneVars picks the ones a
// --fine-tune value names (refusing with a *FineTuneError), and
// FindBatchNorms finds the inference-mode batch norms of the fine-tuned
// layers (refusing with a *BatchNormError one tfcat cannot put in training
// mode).
//
// backbone builds no training graph and runs no session: importing a
// Backbone into the model's graph, fine-tuning it (Adam for its variables,
// its batch norms in training mode) and finding the frozen part to cache
// are package tfgraph's (BuildOptions.Base, FineTune, Model.FrozenCut);
// initialising its weights, caching its features and running the steps are
// package tfsession's. It needs cgo only to ask TensorFlow for its op registry
// (InlineFunctions) and the feature output's shape where the signature
// leaves it open (Open).
package backbone
