"""``python -m repository check DIR``: check a model repository before it is served.

Lists the models of ``DIR`` and exits 1 when it holds none or when a model's files do not
match its card (a missing version, ONNX file or sample image; a size or sha256 that differ):
the same checks the service runs, done when an image is built or a volume filled, so that a
bad repository fails there instead of at the first start. Torch-free, like the rest of the package; ``python -m export
verify`` checks more (ONNX validity, metadata, digests) but needs the build's tools.
"""

from __future__ import annotations

import sys

from .store import Repository

USAGE = "usage: python -m repository check MODEL_REPOSITORY"


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "check":
        print(USAGE, file=sys.stderr)
        return 2
    repository = Repository(argv[2])
    names = repository.names()
    if not names:
        print(
            f"error: {argv[2]} holds no model (no <name>/model.json): build one with "
            "`python -m export build --repository DIR`",
            file=sys.stderr,
        )
        return 1
    problems = [problem for name in names for problem in repository.check(name)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{argv[2]}: {len(names)} model(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
