// The code that makes the Playground's last request again: curl and httpx post the same file to /predict;
// tritonclient sends the tensor over the v2 protocol, preprocessed as the card's input spec says (the
// steps of service/core/preprocess.py and deploy/triton.md; a digit model's input.digits, those of
// service/core/digit_ink.py).

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

function plainSteps(spec) {
  return `# The card's input spec (GET /models/MODEL): the steps /predict takes before inference.
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
    return ((x.transpose(2, 0, 1) - mean) / std)[None]`;
}

// The card's input.digits (repository.DigitNormalization), step by step as service/core/digit_ink.py takes them.
function digitSteps(spec) {
  const d = spec.digits;
  return `# The card's input spec (GET /models/MODEL): a digit model makes any image into its data set's picture
# of a digit (input.digits, version ${d.version}), then resizes and normalises it as training did.
CHANNELS, SIZE = ${spec.shape[0]}, ${spec.crop}
MEAN, STD = [${spec.mean.join(", ")}], [${spec.std.join(", ")}]
BORDER, THRESHOLD, FRAME = ${d.border}, ${d.threshold}, ${d.frame}
STROKE, THICKEN, CELLS = ${d.stroke_width}, ${d.max_thickening}, ${d.resolution}


def area(start, side, length, size):  # each output pixel: the mean of its share of [start, start + side)
    low = start + np.arange(size)[:, None] * side / size
    pixel = np.arange(length)[None, :]
    overlap = np.minimum(low + side / size, pixel + 1) - np.maximum(low, pixel)
    return (np.clip(overlap, 0, None) * size / side).astype(np.float32)


def fit(inked):  # the ink's box, centred in a square of its longer side, resampled to FRAME
    rows, cols = np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    side = max(height, width)
    ys = area(rows[0] - (side - height) // 2, side, inked.shape[0], FRAME)
    xs = area(cols[0] - (side - width) // 2, side, inked.shape[1], FRAME)
    return ys @ inked.astype(np.float32) @ xs.T > 0.5


def thicken(bitmap):  # thin strokes drawn over with a round pen, toward the data set's stroke width
    edges = np.pad(bitmap.astype(np.int8), 1)
    perimeter = np.abs(np.diff(edges, axis=0)).sum() + np.abs(np.diff(edges, axis=1)).sum()
    r = int(np.clip(np.round((STROKE - 2 * bitmap.sum() / max(perimeter, 1)) / 2), 0, THICKEN))
    if not r:
        return bitmap
    padded = np.pad(bitmap, r)
    out, n = np.zeros_like(padded), padded.shape[0]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r + r:
                out[max(dy, 0) : n + min(dy, 0), max(dx, 0) : n + min(dx, 0)] |= padded[
                    max(-dy, 0) : n + min(-dy, 0), max(-dx, 0) : n + min(-dx, 0)
                ]
    return fit(out)


def bilinear(length, size):  # torch's bilinear resize (half-pixel centres) as a matrix
    source = np.maximum((np.arange(size) + 0.5) * length / size - 0.5, 0)
    below = np.floor(source).astype(int)
    weights = np.zeros((size, length), np.float32)
    np.add.at(weights, (np.arange(size), below), 1 - (source - below))
    np.add.at(weights, (np.arange(size), np.minimum(below + 1, length - 1)), source - below)
    return weights


def preprocess(path):
    grey = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("L"), dtype=np.uint8)
    k = max(1, round(BORDER * min(grey.shape)))
    border = np.concatenate([grey[:k].ravel(), grey[-k:].ravel(), grey[:, :k].ravel(), grey[:, -k:].ravel()])
    if np.median(border) / 255 > 0.5:  # dark ink on light paper: made light on dark, as the data set's digits are
        grey, border = 255 - grey, 255 - border
    paper, top = float(np.median(border)) / 255, float(np.percentile(grey, 99.5)) / 255
    ink = np.clip((grey.astype(np.float32) / 255 - paper) / (top - paper), 0, 1)
    bitmap = thicken(fit(ink > THRESHOLD))
    blocks = area(0, FRAME, FRAME, CELLS)
    up = bilinear(CELLS, SIZE)
    x = np.broadcast_to(up @ (blocks @ bitmap.astype(np.float32) @ blocks.T) @ up.T, (CHANNELS, SIZE, SIZE))
    mean, std = np.float32(MEAN).reshape(-1, 1, 1), np.float32(STD).reshape(-1, 1, 1)
    return ((x - mean) / std).astype(np.float32)[None]`;
}

function tritonclient(r) {
  const spec = r.input;
  const headers = r.keyed ? `{"X-API-Key": os.environ["CNNSERVE_API_KEY"]}` : "None";
  const steps = (spec.digits ? digitSteps(spec) : plainSteps(spec)).replace("MODEL", r.model);
  return `import json
import os
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from PIL import Image, ImageOps

HEADERS = ${headers}
${steps}


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
