"""``python -m bench.profile``: py-spy's samples split into the parts of a request, and a real server profiled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.profile import OTHER, PARTS, attribute, main
from bench.server import ROOT

pytestmark = pytest.mark.xdist_group("servers")

# Stacks as py-spy's raw format writes them: root first, ";" between frames, the sample count last.
_MAIN = "<module> (service/__main__.py:58);run_worker (service/process/supervisor.py:106)"
_ROUTE = "__call__ (fastapi/applications.py:1134);handle (starlette/routing.py:290)"
RAW = f"""\
{_MAIN};{_ROUTE};predict (service/http/routes/predict.py:116);read_predict (service/http/codecs.py:80);\
model_validate_json (pydantic/main.py:847) 7
{_MAIN};{_ROUTE};solve_dependencies (fastapi/dependencies/utils.py:600) 5
{_MAIN};infer (service/core/dataplane.py:150);submit (service/core/batching.py:120);\
run (onnxruntime/capi/onnxruntime_inference_collection.py:220) 3
{_MAIN};data_received (uvicorn/protocols/http/httptools_impl.py:180) 2
{_MAIN};{_ROUTE};endpoint (service/http/inference.py:96);_authorize (service/http/inference.py:90) 6
{_MAIN};serve (service/fastpath.py:120) 1
{_MAIN} 4
process 123:"python -m service" 1
not a stack line
"""


def test_each_sample_goes_to_its_innermost_known_frame() -> None:
    counts = attribute(RAW)
    assert counts == {
        "JSON and pydantic": 7,  # the parse, not the routing around it
        "routing, dependencies, middleware": 5,
        "session.run": 3,
        "HTTP protocol": 2,
        "inference route dispatch": 7,  # in today's layout and in the one before issue 21 (for --against)
        "event loop and socket I/O": 4,  # uvloop's own C code, under the worker's loop
        OTHER: 1,
    }
    assert set(counts) <= {name for name, _ in PARTS} | {OTHER}


def test_a_real_server_profiled_against_a_checkout(quick_repository: Path, capsys: pytest.CaptureFixture) -> None:
    main(
        [
            "--repository",
            str(quick_repository),
            "--seconds",
            "1",
            "--concurrency",
            "8",
            "--rounds",
            "2",
            "--against",
            str(ROOT),
        ]
    )
    out = capsys.readouterr().out
    header = re.search(r"^\| part \(µs of server CPU per request\) \| (.+) \|$", out, re.MULTILINE)
    assert header is not None, out
    assert header.group(1).endswith("(--against)") and header.group(1).count("|") == 1, "a column per checkout"
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([\d,*]+) \| [\d,*]+ \|$", out, re.MULTILINE))
    value = {k.strip("*"): float(v.strip("*").replace(",", "")) for k, v in rows.items()}
    parts = [name for name, _ in PARTS] + [OTHER]
    assert set(parts) <= set(value), out
    assert value["samples"] > 20 and value["requests/s"] > 0 and value["in all"] > 0
    assert abs(sum(value[p] for p in parts) - value["in all"]) <= len(parts), "the parts add up to the whole"
    assert value["HTTP protocol"] > 0, "every request goes through uvicorn"
    ratio = re.search(r"^CPU per request, this checkout / --against: (\d+\.\d+)$", out, re.MULTILINE)
    assert ratio is not None and 0.5 < float(ratio.group(1)) < 2, "the same checkout twice: about the same CPU"
    assert value["routing, dependencies, middleware"] < value["in all"] / 2, (
        "routing is a small part of an inference request"
    )


def test_a_real_server_profiled_over_grpc(quick_repository: Path, capsys: pytest.CaptureFixture) -> None:
    """``--payload grpc``: the load goes to the server's gRPC port, and the gRPC runtime's share shows."""
    main(["--repository", str(quick_repository), "--seconds", "1", "--concurrency", "8", "--payload", "grpc"])
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([\d,*]+) \|$", out, re.MULTILINE))
    value = {k.strip("*"): float(v.strip("*").replace(",", "")) for k, v in rows.items()}
    assert value["requests/s"] > 0 and value["in all"] > 0, out
    assert value["gRPC protocol"] + value["event loop and socket I/O"] + value[OTHER] > 0, out
    assert value["HTTP protocol"] < value["in all"] / 10, "the inference requests came over gRPC, not HTTP"
