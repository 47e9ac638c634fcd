"""Calls a tfcat server with Triton's own Python clients, unmodified.

tritonclient.http (REST, with the binary tensor data extension it uses by
default) and tritonclient.grpc (inference.GRPCInferenceService, raw contents)
each check liveness and readiness, read the server's and the model's
metadata, and infer a float tensor and encoded images, as a user of KServe or
Triton writes it. Prints one JSON object of what the server answered.

usage: triton_client.py HTTP_ADDR GRPC_ADDR MODEL VERSION TENSOR N H W C IMAGE...
  TENSOR is N*H*W*C little-endian float32 values; each IMAGE an encoded file.
"""

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def reply(result, response):
    return {
        "probabilities": result.as_numpy("probabilities").tolist(),
        "classes": result.as_numpy("classes").tolist(),
        "version": response["model_version"],
        "id": response.get("id", ""),
    }


def metadata(md):
    def tensors(ts):
        return [{"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t["shape"]]} for t in ts]

    return {
        "name": md["name"],
        "versions": list(md["versions"]),
        "platform": md["platform"],
        "inputs": tensors(md["inputs"]),
        "outputs": tensors(md["outputs"]),
    }


def run(mod, client, model, version, x, blobs, grpc):
    def response(result):
        r = result.get_response()
        if grpc:
            return {"model_version": r.model_version, "id": r.id}
        return r

    def md(m):
        if grpc:
            return {"name": m.name, "versions": m.versions, "platform": m.platform,
                    "inputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in m.inputs],
                    "outputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in m.outputs]}
        return m

    out = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "version_ready": client.is_model_ready(model, version),
        "missing_ready": client.is_model_ready(model + "-missing"),
        "metadata": metadata(md(client.get_model_metadata(model))),
        "version_metadata": metadata(md(client.get_model_metadata(model, version))),
    }
    sm = client.get_server_metadata()
    if grpc:
        sm = {"name": sm.name, "version": sm.version, "extensions": list(sm.extensions)}
    out["server"] = sm

    # A float tensor, in the client's default form: binary data over REST,
    # raw_input_contents over gRPC.
    tensor = mod.InferInput("images", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(model, [tensor], request_id="t1")
    out["tensor"] = reply(result, response(result))

    # Encoded images: a BYTES tensor of the files' bytes.
    images = mod.InferInput("images", [len(blobs)], "BYTES")
    images.set_data_from_numpy(np.array(blobs, dtype=np.object_))
    result = client.infer(model, [images], model_version=version, request_id="i1")
    out["images"] = reply(result, response(result))

    if not grpc:
        # The tensor as JSON data, the outputs asked for as JSON data.
        tensor = mod.InferInput("images", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=False)
        outputs = [mod.InferRequestedOutput("probabilities", binary_data=False), mod.InferRequestedOutput("classes", binary_data=False)]
        result = client.infer(model, [tensor], outputs=outputs)
        out["tensor_json"] = reply(result, response(result))

    try:
        client.infer(model + "-missing", [tensor])
        out["missing"] = {}
    except InferenceServerException as e:
        out["missing"] = {"status": e.status(), "message": e.message()}
    return out


def main():
    http_addr, grpc_addr, model, version, tensor_path = sys.argv[1:6]
    n, h, w, c = (int(v) for v in sys.argv[6:10])
    blobs = [open(p, "rb").read() for p in sys.argv[10:]]
    x = np.fromfile(tensor_path, dtype="<f4").reshape(n, h, w, c)
    out = {
        "http": run(httpclient, httpclient.InferenceServerClient(http_addr, network_timeout=60.0), model, version, x, blobs, False),
        "grpc": run(grpcclient, grpcclient.InferenceServerClient(grpc_addr), model, version, x, blobs, True),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
