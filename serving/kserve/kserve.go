// Package kserve answers the Open Inference Protocol — KServe's v2 protocol,
// which KServe, Triton, Seldon and MLServer speak — for the models of a
// serving.Models, over REST (NewHandler) and gRPC (Register), so that v2
// clients (tritonclient.http and tritonclient.grpc, KServe's, curl) work
// against tfcat serve and tfcat runs in a KServe InferenceService as a custom
// runtime.
//
// REST routes (MODEL is a model's name; /versions/V may follow it):
//
//	GET  /v2/health/live             200 while the server runs
//	GET  /v2/health/ready            200 once every model has a version to infer with, 400 before
//	GET  /v2                         {"name": "tfcat", "version": ..., "extensions": ["binary_tensor_data"]}
//	GET  /v2/models/MODEL            the model's metadata: versions, platform, inputs, outputs
//	GET  /v2/models/MODEL/ready      200 when the model can infer, 4xx with {"error": ...} when not
//	POST /v2/models/MODEL/infer      an inference request
//
// gRPC: inference.GRPCInferenceService's ServerLive, ServerReady, ModelReady,
// ServerMetadata, ModelMetadata and ModelInfer (package inferencepb holds the
// messages and stubs, generated from the protocol's grpc_predict_v2.proto);
// other methods of Triton's larger service answer UNIMPLEMENTED.
//
// A version V is a version number, or a version label of the model's config
// (stable, canary: a tfcat extension; v2 has no labels); none picks the latest
// available version. A number that names no version, 0, or one with leading
// zeros is 404 (NOT_FOUND), as TensorFlow Serving answers.
//
// The model takes one input, "images" (savedmodel.InputKey), in one of two
// forms:
//
//   - FP32 of shape [N, H, W, C]: N images preprocessed as tfcat predict
//     does (tfcat preprocess writes the tensor of a file). In JSON its data
//     are numbers, flat or nested in row-major order (JSON has no NaN or
//     infinities: those go in binary form, and are predicted as the v1 REST
//     API predicts them; outputs write them as it does, NaN, Infinity).
//   - BYTES of shape [N] or [N, 1]: N encoded JPEG, PNG or BMP images, which
//     the server preprocesses as tfcat predict does. In JSON, v2 carries
//     BYTES elements as strings: each is the base64 of an image (standard
//     alphabet, padding optional), as KServe's examples send images.
//
// In binary form (the binary tensor data extension, what tritonclient.http
// sends by default: the JSON header's length in the
// Inference-Header-Content-Length header, each input's bytes after it in
// input order, sized by its "binary_data_size" parameter) and in gRPC's
// raw_input_contents, FP32 values are little-endian float32 and BYTES
// elements are each a 4-byte little-endian length followed by the image's
// bytes. gRPC also takes typed contents (fp32_contents, bytes_contents).
//
// The outputs are "probabilities", FP32 [N, classes], and "classes", INT64
// [N] (the most probable class's index), or those the request names. Over
// REST they are JSON data unless the request asks for binary data (the
// request parameter "binary_data_output", or an output's "binary_data"
// parameter; tritonclient.http sets the first when it names no outputs); then
// they follow the JSON in the binary extension's form, whose length the
// response's Inference-Header-Content-Length header gives. Over gRPC they are
// raw_output_contents, as Triton answers and tritonclient.grpc reads, unless
// the request sent its inputs in typed contents: then they are typed contents
// too (fp32_contents, int64_contents).
//
// Request parameters: "timeout" (microseconds, Triton's) shortens the
// request's deadline; "binary_data_output" as above; others are ignored, as
// v2 allows. Shared-memory parameters and Triton's "classification" output
// parameter are refused (INVALID_ARGUMENT): tfcat has neither extension. A
// REST body may be gzip or deflate encoded (Content-Encoding), as
// tritonclient.http sends it when asked; its decoded size counts against the
// body limit.
//
// Every inference goes through the model version's serving.Server
// (Server.Predict): the same request slots, memory budget, pixel limit,
// deadline (Config.RequestTimeout, and the gRPC deadline or "timeout") and
// batcher as TensorFlow Serving's REST and gRPC APIs, so that all protocols'
// requests share batches and limits, and give the same probabilities for
// the same images. REST bodies take Options.BodyMemory as they arrive, and
// are refused over Options.MaxBodyBytes; a gRPC message is bounded by the
// grpc.Server's MaxRecvMsgSize (grpcapi.NewServer sets REST's body limit).
//
// Errors over REST are {"error": "<message>"}, with HTTP statuses for
// TensorFlow Serving's codes as the v1 REST API answers them: 400 for a
// malformed request (JSON, datatype, shape, input or output name, an
// undecodable image or one over the pixel limit), 404 for an unknown model,
// version or label, 405 for a wrong method, 413 for a body over the limit or
// a request needing more than the whole memory budget, 415 for an unknown
// Content-Encoding, 499 when the client cancelled, 500 when the model fails,
// 503 when the deadline passed waiting for memory or a request slot or the
// version is closing, 504 when it passed while predicting. Over gRPC they are
// the codes themselves (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED,
// DEADLINE_EXCEEDED, ...).
package kserve

import (
	"runtime/debug"
	"time"

	"google.golang.org/grpc"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/kserve/inferencepb"
)

// ServiceName is the gRPC service's full name, as in its methods' paths
// (/inference.GRPCInferenceService/ModelInfer).
const ServiceName = "inference.GRPCInferenceService"

// Extensions are the protocol extensions the server metadata lists:
// Triton's binary tensor data extension (REST).
var Extensions = []string{"binary_tensor_data"}

// Platform is what model metadata reports as every model's platform.
const Platform = "tensorflow"

// Options set up the v2 front ends.
type Options struct {
	// ServerName and ServerVersion are what the server metadata reports:
	// "tfcat" and the module's version from the build (or "devel") when
	// empty. tfcat serve passes its own version.
	ServerName, ServerVersion string
	// MaxBodyBytes limits a REST request body, after decoding a
	// Content-Encoding; serving.DefaultMaxBodyBytes when zero. Pass the
	// models' Config.MaxBodyBytes.
	MaxBodyBytes int64
	// BodyMemory bounds the bytes of REST request bodies held at once, from
	// their first byte until their request is answered; once read, a body
	// also counts against its version's Config.DecodeMemory, as REST's
	// does. serving.DefaultDecodeMemory when zero.
	BodyMemory int64
	// RequestTimeout bounds a REST request's wait for BodyMemory (then 503);
	// the model version's Config.RequestTimeout bounds the rest.
	// serving.DefaultRequestTimeout when zero.
	RequestTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.ServerName == "" {
		o.ServerName = "tfcat"
	}
	if o.ServerVersion == "" {
		o.ServerVersion = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			o.ServerVersion = bi.Main.Version
		}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = serving.DefaultMaxBodyBytes
	}
	if o.BodyMemory <= 0 {
		o.BodyMemory = serving.DefaultDecodeMemory
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = serving.DefaultRequestTimeout
	}
	return o
}

// Register registers inference.GRPCInferenceService for models on s (a
// grpc.Server, such as grpcapi.NewServer's, before it serves), beside
// whatever else s serves. Of opt, only the server's name and version are
// used: s's own options bound messages.
func Register(s grpc.ServiceRegistrar, models serving.Models, opt Options) {
	inferencepb.RegisterGRPCInferenceServiceServer(s, &grpcService{core: newCore(models, opt)})
}
