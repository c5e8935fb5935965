"""deploy/requirements-*.txt: exact pins, complete, and in line with pyproject.toml.

The images install these files with ``pip install --no-deps`` and then ``pip check``, so a
dependency missing here fails the image build; these tests catch it here first. Versions are
not required to equal .venv's (a fresh ``make setup`` may resolve newer ones): they must satisfy
pyproject.toml's specifiers, and ``python -m tests.deploy.pins --write`` brings them up to
.venv's. Whether PyPI has wheels of these versions for the images' CPython 3.12 is not checked
here (no network in tests).
"""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from tests.deploy import pins


@pytest.mark.parametrize("pin_file", pins.PIN_FILES, ids=lambda p: p.name)
def test_every_line_is_an_exact_pin(pin_file: pins.PinFile) -> None:
    found, includes, bad = pins.read_pins(pin_file.path)
    assert not bad, f"{pin_file.name}: not `name==version`: {bad}"
    assert includes == list(pin_file.includes)
    assert found


@pytest.mark.parametrize("pin_file", pins.PIN_FILES, ids=lambda p: p.name)
def test_pins_cover_every_dependency(pin_file: pins.PinFile) -> None:
    found, includes, _ = pins.read_pins(pin_file.path)
    for include in includes:
        found |= pins.read_pins(pin_file.path.parent / include)[0]
    expected = set(pins.expected_pins(pin_file))
    for include in pin_file.includes:
        expected |= set(pins.expected_pins(next(p for p in pins.PIN_FILES if p.name == include)))
    missing, extra = expected - set(found), set(found) - expected
    assert not missing and not extra, (
        f"{pin_file.name}: missing {sorted(missing)}, not needed {sorted(extra)}: "
        "run `.venv/bin/python -m tests.deploy.pins --write`"
    )


@pytest.mark.parametrize("pin_file", pins.PIN_FILES, ids=lambda p: p.name)
def test_pins_satisfy_pyproject(pin_file: pins.PinFile) -> None:
    found, _, _ = pins.read_pins(pin_file.path)
    for requirement in pins.project_requirements(pin_file.extras):
        name = canonicalize_name(requirement.name)
        if name in found:
            assert requirement.specifier.contains(found[name], prereleases=True), (
                f"{pin_file.name}: {name}=={found[name]} does not satisfy pyproject.toml's {requirement}"
            )


def test_runtime_pins_have_no_torch_and_one_onnxruntime() -> None:
    runtime = pins.read_pins(pins.RUNTIME.path)[0]
    cpu = pins.read_pins(pins.CPU.path)[0]
    gpu = pins.read_pins(pins.GPU.path)[0]
    assert "torch" not in runtime | cpu | gpu
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu  # both install the same `onnxruntime` module
    # onnxruntime-gpu's releases trail the CPU wheel's by at most a minor version or two.
    cpu_version, gpu_version = (
        tuple(int(x) for x in v.split(".")[:2]) for v in (cpu["onnxruntime"], gpu["onnxruntime-gpu"])
    )
    assert cpu_version[0] == gpu_version[0] and 0 <= cpu_version[1] - gpu_version[1] <= 2
    gpu_spec = next(r for r in pins.project_requirements(("gpu",)) if r.name == "onnxruntime-gpu")
    assert gpu_spec.specifier.contains(gpu["onnxruntime-gpu"])


def test_build_pins_torch_to_the_project_pin() -> None:
    build = pins.read_pins(pins.BUILD.path)[0]
    train = next(r for r in pins.project_requirements(("train",)) if r.name == "torch")
    assert f"torch{train.specifier}" == pins.TORCH_PIN == f"torch=={build['torch']}"
