#!/usr/bin/env bash
# Build the cpu image with podman and run it with buildah, on a machine without a Docker engine
# (podman run needs cgroups; buildah run does not). Checks what `docker run` would show: the
# entrypoint serves the baked repository as the unprivileged user, the HEALTHCHECK command
# passes, /predict answers, and torch is not in the image.
#
#   deploy/try-image.sh                      # MODEL_SOURCE=context: ./model_repository baked in
#   MODEL_SOURCE=build deploy/try-image.sh   # the repository-build stage trains the zoo (long)
#   STANDIN=1 deploy/try-image.sh            # no registry: a Debian bookworm stand-in for the base
#
# STANDIN=1 builds python:3.12-slim-bookworm with debootstrap (Debian's python3, 3.11), adds this
# machine's CA certificates so pip works behind an intercepting proxy, and builds with
# --pull=never. Needs podman, buildah (and debootstrap for STANDIN) and root.
set -euo pipefail

TARGET=cpu
MODEL_SOURCE=${MODEL_SOURCE:-context}
PORT=${PORT:-8765}
BASE=docker.io/library/python:3.12-slim-bookworm
IMAGE=localhost/cnnserve:${TARGET}
cd "$(dirname "$0")/.."

if [[ ${STANDIN:-0} == 1 ]] && ! podman image exists "$BASE"; then
    root=$(mktemp -d /var/tmp/cnnserve-standin.XXXXXX)
    echo "stand-in base: debootstrap bookworm into $root"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
        http://deb.debian.org/debian >"$root.log" 2>&1 || { tail "$root.log"; exit 1; }
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$BASE" >/dev/null
    rm -rf "$root" "$root.log"
fi

pull=()
[[ ${STANDIN:-0} == 1 ]] && pull=(--pull=never)
echo "building $IMAGE (MODEL_SOURCE=$MODEL_SOURCE)"
podman build --format docker --isolation=chroot --network host "${pull[@]}" --target "$TARGET" \
    --build-arg MODEL_SOURCE="$MODEL_SOURCE" -t "$IMAGE" .

inspect() { podman image inspect --format "$1" "$IMAGE"; }
entrypoint=$(inspect '{{join .Config.Entrypoint " "}}')
# shellcheck disable=SC2016  # Go templates, not shell
healthcheck=$(inspect '{{range $i, $a := .Config.Healthcheck.Test}}{{if $i}} {{$a}}{{end}}{{end}}')
container=$(buildah from "$IMAGE")
server=""
cleanup() {
    if [[ -n $server ]]; then kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    buildah rm "$container" >/dev/null
}
trap cleanup EXIT
in_image() { buildah run --isolation=chroot --network=host -e CNNSERVE_PORT="$PORT" "$container" -- "$@"; }

echo "starting the entrypoint: $entrypoint (port $PORT)"
# Not through in_image: $! must be buildah itself, which passes SIGTERM on (uvicorn's graceful stop).
# shellcheck disable=SC2086  # the entrypoint is a word list
buildah run --isolation=chroot --network=host -e CNNSERVE_PORT="$PORT" "$container" -- $entrypoint \
    >"${TMPDIR:-/tmp}/cnnserve-image.log" 2>&1 &
server=$!
for _ in $(seq 240); do
    curl -fsS "localhost:$PORT/v2/health/ready" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "${TMPDIR:-/tmp}/cnnserve-image.log"; exit 1; }
    sleep 0.5
done
curl -fsS "localhost:$PORT/v2/health/ready" >/dev/null
echo "ready; the image's HEALTHCHECK: $healthcheck"
# shellcheck disable=SC2086
in_image $healthcheck
# shellcheck disable=SC2016  # expanded in the image
in_image sh -c 'echo "runs as $(id -un) ($(id -u))"
    if python -c "import torch" 2>/dev/null; then echo "torch is in the runtime image"; exit 1; fi
    echo "no torch in the image"'
in_image python - "$PORT" <<'EOF'
"""Every served model answers /predict for a blank image of its own input size."""
import io, json, sys, urllib.request
from PIL import Image

base = f"http://127.0.0.1:{sys.argv[1]}"
models = json.load(urllib.request.urlopen(f"{base}/models"))["models"]
for m in models:
    card = json.load(urllib.request.urlopen(f"{base}/models/{m['name']}"))
    shape = card["input"]["shape"]
    png = io.BytesIO()
    Image.new(card["input"]["color_mode"], (shape[2], shape[1])).save(png, "PNG")
    req = urllib.request.Request(f"{base}/predict?model={m['name']}&top_k=1", png.getvalue(), {"Content-Type": "image/png"})
    out = json.load(urllib.request.urlopen(req))
    top = out["predictions"][0]["top_k"][0]
    print(f"{m['name']}: {m['status']}, {out['provider']}, top-1 of a blank image {top['label']!r} "
          f"({top['probability']:.2f}) in {out['timings']['total_ms']:.1f} ms")
EOF
echo "image $IMAGE: $(inspect '{{.Size}}' | awk '{printf "%.0f MB", $1 / 1e6}'), user $(inspect '{{.Config.User}}')"
