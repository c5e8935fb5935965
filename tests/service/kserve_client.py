"""KServe's stock gRPC client against a running server: ``python kserve_client.py HOST:PORT MODEL < tensor.json``.

Run by tests/service/test_grpc.py with .venv-kserve's Python (KServe's package pins a protobuf the
main environment does not have). Prints what the client saw as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest


async def main(target: str, model: str, tensor: np.ndarray) -> dict[str, object]:
    client = InferenceGRPCClient(target)
    try:
        tensor_input = InferInput("input", list(tensor.shape), "FP32")
        tensor_input.set_data_from_numpy(tensor, binary_data=True)
        response = await client.infer(InferRequest(model_name=model, infer_inputs=[tensor_input]))
        outputs = {output.name: output.as_numpy().tolist() for output in response.outputs}
        return {
            "live": await client.is_server_live(),
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready(model),
            "probabilities": outputs["probabilities"],
        }
    finally:
        await client.close()


if __name__ == "__main__":
    data = np.array(json.load(sys.stdin), np.float32)
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], data))))
