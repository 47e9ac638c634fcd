// Package savedmodel exports tfcat's models as TensorFlow SavedModels and loads
// them back.
//
// An export is a TF1-style SavedModel, as tf.compat.v1.saved_model.Builder
// writes one: saved_model.pb holds a single MetaGraphDef tagged "serve" with the
// inference graph only (no optimizer, no labels, no cost), a SaverDef, the
// variables collections and the signature "serving_default":
//
//	inputs:  images        float32 [-1, H, W, C]  x:0
//	outputs: probabilities float32 [-1, classes]  y_pred:0
//	         classes       int64   [-1]           y_pred_cls:0 (argmax)
//
// The images are preprocessed as tfcat's dataset package (and the tutorial)
// does: BGR, resized to H×W with OpenCV's bilinear filter, scaled to [0, 1].
// The class names, in label order, travel as the asset assets/classes.txt (one
// name a line), registered in the MetaGraphDef's asset_file_def and the
// asset_filepaths collection. The weights are variables/variables.index and
// variables/variables.data-00000-of-00001, written by SaveV2.
//
// Python loads an export with tf.saved_model.load (its TF1 path) or
// tf.compat.v1.saved_model.loader.load, TensorFlow Serving serves it, and
// saved_model_cli shows it. Load opens one in Go through the C API's SavedModel
// loader.
package savedmodel

import (
	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// Names inside an export.
const (
	// Tag is the MetaGraphDef's only tag, the one servers look for.
	Tag = checkpoint.ServeTag
	// SignatureKey is the signature TensorFlow Serving uses by default.
	SignatureKey = checkpoint.ServingSignatureKey
	// PredictMethod is the signature's method name.
	PredictMethod = "tensorflow/serving/predict"

	// InputKey is the signature's input: float32 images [batch, H, W, C].
	InputKey = "images"
	// ProbabilitiesKey is the signature's softmax output [batch, classes].
	ProbabilitiesKey = "probabilities"
	// ClassesKey is the signature's int64 argmax output [batch].
	ClassesKey = "classes"

	// ClassesOpName is the ArgMax node Export adds to the graph; the
	// tutorial's train.py names its argmax y_pred_cls.
	ClassesOpName = "y_pred_cls"
	// ClassNamesAsset is the asset file holding the class names, one a line.
	ClassNamesAsset = "classes.txt"
	// classNamesAssetOp is the string Const that stands for the asset's path
	// in the graph; loaders feed it the file's full path.
	classNamesAssetOp = "class_names_asset"

	// ModelFile, VariablesDir, VariablesName and AssetsDir lay out the folder.
	ModelFile     = checkpoint.SavedModelFile
	VariablesDir  = checkpoint.SavedModelVariablesDir
	VariablesName = checkpoint.SavedModelVariablesName // checkpoint prefix inside VariablesDir
	AssetsDir     = "assets"

	// assetFilepathsCollection is tf.GraphKeys.ASSET_FILEPATHS.
	assetFilepathsCollection = "asset_filepaths"
)

// Tensor names of the signature, as TensorInfo.name gives them.
var (
	inputTensor         = checkpoint.TensorName(network.InputName, 0)
	probabilitiesTensor = checkpoint.TensorName(network.PredictionName, 0)
	classesTensor       = checkpoint.TensorName(ClassesOpName, 0)
)

// IsSavedModel reports whether dir is a folder holding a saved_model.pb
// (checkpoint.IsSavedModel).
func IsSavedModel(dir string) bool { return checkpoint.IsSavedModel(dir) }
