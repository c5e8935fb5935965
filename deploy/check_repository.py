"""Check a model repository before it is baked into an image or put on a volume.

``python deploy/check_repository.py DIR`` lists the models of ``DIR`` and exits 1 when it holds
none or when a model's files do not match its card (missing version, size or sha256 that
differ): the same checks the service runs, done at build time so that a bad repository fails
the ``docker build`` instead of the first start. Needs only ``export.repository`` (no torch).
The Dockerfile runs it from /app, where ``export/`` sits next to it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: find export/ next to it (image) or above it (checkout)
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(p) for p in (here, here.parent) if (p / "export" / "repository.py").is_file()][:1]

from export.repository import Repository  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} MODEL_REPOSITORY", file=sys.stderr)
        return 2
    repository = Repository(argv[1])
    names = repository.names()
    if not names:
        print(
            f"error: {argv[1]} holds no model (no <name>/model.json): build one with "
            "`python -m export build --repository DIR`",
            file=sys.stderr,
        )
        return 1
    problems = [problem for name in names for problem in repository.check(name)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{argv[1]}: {len(names)} model(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
