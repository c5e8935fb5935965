// The code that makes the Playground's last request again: curl and httpx post the same file to /predict;
// tritonclient sends the tensor over the v2 protocol, preprocessed as the card's input spec says (the
// steps of service/preprocess.py and deploy/triton.md).

function keyLine(keyed, curl) {
  if (!keyed) return "";
  return curl
    ? `  -H "X-API-Key: $CNNSERVE_API_KEY" \\\n`
    : `    headers={"X-API-Key": os.environ["CNNSERVE_API_KEY"]},\n`;
}

function curl(r) {
  const params = new URLSearchParams({ version: r.version, variant: r.variant, top_k: r.topK });
  return (
    `curl -s -X POST '${r.origin}/models/${r.model}/predict?${params}' \\\n` +
    keyLine(r.keyed, true) +
    `  -F 'file=@${r.filename}'\n`
  );
}

function httpx(r) {
  return `${r.keyed ? "import os\n\n" : ""}import httpx

with open(${JSON.stringify(r.filename)}, "rb") as f:
    response = httpx.post(
        "${r.origin}/models/${r.model}/predict",
        params={"version": ${r.version}, "variant": "${r.variant}", "top_k": ${r.topK}},
        files={"file": (${JSON.stringify(r.filename)}, f)},
${keyLine(r.keyed, false)}    )
response.raise_for_status()
for score in response.json()["predictions"][0]["top_k"]:
    print(score["label"], round(score["probability"], 4))
`;
}

function tritonclient(r) {
  const spec = r.input;
  const headers = r.keyed ? `{"X-API-Key": os.environ["CNNSERVE_API_KEY"]}` : "None";
  return `import json
import os
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from PIL import Image, ImageOps

HEADERS = ${headers}
# The card's input spec (GET /models/${r.model}): the steps /predict takes before inference.
MODE, RESIZE, CROP = "${spec.color_mode}", ${spec.resize}, ${spec.crop}
MEAN, STD = [${spec.mean.join(", ")}], [${spec.std.join(", ")}]


def preprocess(path):
    image = ImageOps.exif_transpose(Image.open(path)).convert(MODE)
    w, h = image.size
    size = (RESIZE, max(1, round(h * RESIZE / w))) if w <= h else (max(1, round(w * RESIZE / h)), RESIZE)
    if size != (w, h):
        image = image.resize(size, Image.${spec.interpolation.toUpperCase()})
    w, h = image.size
    left, top = round((w - CROP) / 2), round((h - CROP) / 2)
    x = np.asarray(image.crop((left, top, left + CROP, top + CROP)), dtype=np.float32) / 255.0
    x = x[:, :, None] if x.ndim == 2 else x
    mean, std = np.float32(MEAN).reshape(-1, 1, 1), np.float32(STD).reshape(-1, 1, 1)
    return ((x.transpose(2, 0, 1) - mean) / std)[None]


card_request = urllib.request.Request("${r.origin}/models/${r.model}", headers=HEADERS or {})
labels = json.load(urllib.request.urlopen(card_request))["labels"]
batch = preprocess(${JSON.stringify(r.filename)})
client = httpclient.InferenceServerClient("${r.host}")
inputs = [httpclient.InferInput("input", list(batch.shape), "FP32")]
inputs[0].set_data_from_numpy(batch)  # binary tensor data, as Triton's clients send it
result = client.infer(
    "${r.model}",
    inputs,
    model_version="${r.version}",
    outputs=[httpclient.InferRequestedOutput("probabilities")],
    parameters={"variant": "${r.variant}"},
    headers=HEADERS,
)
probabilities = result.as_numpy("probabilities")[0]
for i in np.argsort(probabilities)[::-1][:${r.topK}]:
    print(labels[i], round(float(probabilities[i]), 4))
`;
}

export const SNIPPETS = [
  { id: "curl", name: "curl", make: curl },
  { id: "httpx", name: "Python (httpx)", make: httpx },
  { id: "triton", name: "Python (tritonclient, v2)", make: tritonclient },
];
