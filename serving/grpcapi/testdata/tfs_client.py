"""Calls a tfcat gRPC server with TensorFlow Serving's own Python client.

The client is the tensorflow-serving-api package, unmodified: its stubs
(prediction_service_pb2_grpc, model_service_pb2_grpc) and messages, with
TensorFlow's make_tensor_proto and make_ndarray, as a user of TensorFlow
Serving writes it. Prints one JSON object of what the server answered.

usage: tfs_client.py ADDR MODEL TENSOR N H W C IMAGE...
  TENSOR is N*H*W*C little-endian float32 values; each IMAGE an encoded file.
"""

import json
import sys

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

TIMEOUT = 60  # seconds: the gRPC deadline of each call


def predict_reply(resp):
    return {
        "probabilities": tf.make_ndarray(resp.outputs["probabilities"]).tolist(),
        "classes": tf.make_ndarray(resp.outputs["classes"]).tolist(),
        "name": resp.model_spec.name,
        "version": resp.model_spec.version.value,
        "signature": resp.model_spec.signature_name,
    }


def tensor_info(info):
    return {
        "dtype": tf.dtypes.as_dtype(info.dtype).name,
        "shape": [d.size for d in info.tensor_shape.dim],
    }


def main():
    addr, model, tensor_path = sys.argv[1:4]
    n, h, w, c = (int(v) for v in sys.argv[4:8])
    blobs = [open(p, "rb").read() for p in sys.argv[8:]]
    channel = grpc.insecure_channel(addr)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    out = {}

    # Predict of preprocessed images: make_tensor_proto packs tensor_content.
    x = np.fromfile(tensor_path, dtype="<f4").reshape(n, h, w, c)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = "serving_default"
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
    out["predict"] = predict_reply(predictions.Predict(req, timeout=TIMEOUT))

    # Predict of encoded images: a DT_STRING tensor, and an output_filter.
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(blobs, dtype=tf.string, shape=[len(blobs)]))
    out["predict_images"] = predict_reply(predictions.Predict(req, timeout=TIMEOUT))
    req.output_filter.append("classes")
    out["filtered"] = sorted(predictions.Predict(req, timeout=TIMEOUT).outputs.keys())

    # Classify of tf.Examples carrying the encoded images.
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = model
    for b in blobs:
        ex = req.input.example_list.examples.add()
        ex.features.feature["image/encoded"].bytes_list.value.append(b)
    resp = predictions.Classify(req, timeout=TIMEOUT)
    out["classify"] = {
        "version": resp.model_spec.version.value,
        "results": [
            [{"label": k.label, "score": k.score} for k in cl.classes]
            for cl in resp.result.classifications
        ],
    }

    # The signature, unpacked from the Any as TensorFlow Serving's docs do.
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = model
    req.metadata_field.append("signature_def")
    resp = predictions.GetModelMetadata(req, timeout=TIMEOUT)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    out["metadata"] = {
        "name": resp.model_spec.name,
        "version": resp.model_spec.version.value,
        "signatures": sorted(sigs.signature_def.keys()),
        "method": sig.method_name,
        "inputs": {k: tensor_info(v) for k, v in sig.inputs.items()},
        "outputs": {k: tensor_info(v) for k, v in sig.outputs.items()},
    }

    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = model
    resp = models.GetModelStatus(req, timeout=TIMEOUT)
    out["status"] = [
        {
            "version": v.version,
            "state": get_model_status_pb2.ModelVersionStatus.State.Name(v.state),
            "error_code": int(v.status.error_code),
        }
        for v in resp.model_version_status
    ]

    # An error as the client raises it.
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model + "-missing"
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
    try:
        predictions.Predict(req, timeout=TIMEOUT)
        out["missing"] = None
    except grpc.RpcError as e:
        out["missing"] = {"code": e.code().name, "details": e.details()}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
