"""Putting a verified version into the repository, in an order a polling reader can trust.

1. The version's files are written into a hidden staging folder next to the model's folders.
2. The staging folder is renamed to ``<name>/<version>`` (one atomic rename).
3. ``config.pbtxt`` is rewritten (atomically) from the new card.
4. The card ``model.json`` is written last, atomically: a reader that sees a version in the
   card sees all of its files.

The card carries digests of itself (:func:`card_digests`): ``verify`` recomputes them, so a
hand-edited card is caught even when the edit is valid JSON and a valid card.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .card import SAMPLES_DIR, VARIANT_FILES, Digests, ModelCard, Variant, VersionCard
from .store import Repository, RepositoryError, sha256_file, umask
from .triton import write_config

__all__ = [
    "card_digests",
    "check_digests",
    "file_variant",
    "load_previous",
    "next_version",
    "now",
    "publish_version",
    "staging_dir",
    "with_version",
]

log = logging.getLogger(__name__)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def card_digests(card: ModelCard, version: VersionCard) -> Digests:
    """Digests of ``card`` without its versions and of ``version`` without its digests."""
    return Digests(
        card=_sha(card.model_dump(mode="json", exclude={"versions"})),
        version=_sha(version.model_dump(mode="json", exclude={"verification": {"digests"}})),
    )


def check_digests(card: ModelCard) -> list[str]:
    """Problems: a version whose digest does not match, or a latest version whose card digest does not."""
    problems = []
    for number, version in sorted(card.versions.items()):
        stored = version.verification.digests
        if stored is None:
            problems.append(f"{card.name}: version {number} has no digests in the card; was the card edited by hand?")
            continue
        fresh = card_digests(card, version)
        if stored.version != fresh.version:
            problems.append(
                f"{card.name}: version {number}'s entry in model.json was changed after publishing "
                "(digest mismatch); rebuild it with `python -m export build` instead of editing the card"
            )
        if number == card.latest_version and stored.card != fresh.card:
            problems.append(
                f"{card.name}: model.json was changed after publishing (card digest mismatch); "
                "rebuild with `python -m export build` instead of editing the card"
            )
    return problems


def load_previous(repository: Repository, name: str) -> ModelCard | None:
    """The published card of ``name``, or ``None``; an unreadable card is an error that says what to do."""
    if not repository.card_path(name).exists():
        return None
    try:
        return repository.load_card(name)
    except RepositoryError as err:
        raise RepositoryError(
            f"{err}\nremove {repository.model_dir(name)} (or fix the card) before publishing {name} again"
        ) from None


def next_version(previous: ModelCard | None) -> int:
    return 1 if previous is None else previous.latest_version + 1


def staging_dir(repository: Repository, name: str) -> Path:
    """A fresh hidden folder inside ``<name>/`` to write a version into before it is published."""
    model_dir = repository.model_dir(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))


def file_variant(path: Path, precision: str, *, published: bool = True, **fields: Any) -> Variant:
    """A :class:`Variant` record for an ONNX file: its name, size and sha256."""
    if not published:
        return Variant(precision=precision, file=VARIANT_FILES[precision], published=False, **fields)
    return Variant(
        precision=precision,
        file=path.name,
        published=True,
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        **fields,
    )


def with_version(fields: Mapping[str, Any], previous: ModelCard | None, version: VersionCard) -> ModelCard:
    """The card of ``fields`` (every :class:`ModelCard` field but versions and created) plus ``version``.

    Earlier versions are kept as they were; ``created`` is the first publication's time.
    """
    versions = dict(previous.versions) if previous is not None else {}
    created = previous.created if previous is not None else version.created
    draft = ModelCard(**fields, versions={**versions, version.version: version}, created=created)
    digests = card_digests(draft, version)
    sealed = version.model_copy(update={"verification": version.verification.model_copy(update={"digests": digests})})
    return draft.model_copy(update={"versions": {**versions, version.version: sealed}})


def publish_version(repository: Repository, card: ModelCard, staged: Path) -> Path:
    """Move ``staged`` to ``<name>/<latest version>``, then write config.pbtxt, then the card.

    ``staged`` holds the version's files: its ONNX files and ``samples/`` (the card's sample images).

    Returns the version folder. Files of ``staged`` that the card does not list are removed.
    """
    ModelCard.model_validate(card.model_dump())  # a card that does not round-trip must not be written
    version = card.latest_version
    entry = card.versions[version]
    listed = {v.file for v in entry.variants.values() if v.published}
    listed |= {f"{SAMPLES_DIR}/{sample.file}" for sample in entry.samples}
    for path in sorted(staged.rglob("*"), reverse=True):  # a folder's files before the folder
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.relative_to(staged).as_posix() not in listed:
            path.unlink()
    missing = listed - {p.relative_to(staged).as_posix() for p in staged.rglob("*")}
    if missing:
        raise RepositoryError(f"{card.name}: staged version {version} lacks {', '.join(sorted(missing))}")
    target = repository.model_dir(card.name) / str(version)
    if target.exists():
        # Not in the card (the card is written last): debris of an interrupted build.
        log.warning("%s: replacing %s, left by an interrupted build", card.name, target)
        shutil.rmtree(target)
    # mkdtemp made the folder private (0700); published, it must be as readable as the files in it:
    # the images copy the repository as root and serve it as an unprivileged user.
    staged.chmod(0o777 & ~umask())
    staged.rename(target)
    write_config(repository.model_dir(card.name), card)
    repository.write_card(card)
    log.info("%s: published version %d (%s)", card.name, version, ", ".join(sorted(listed)))
    return target
