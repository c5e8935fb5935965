"""A small reader for the project's Dockerfile: stages, and what the tests need of each.

Enough of the Dockerfile syntax for this file (line continuations, comments, ``ARG``/``ENV``
with ``$VAR`` expansion, JSON and shell forms, ``COPY --from``), so that the tests take the
container's start command, environment and copied files from the Dockerfile itself instead of
keeping a copy of them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

_VAR = re.compile(r"\$(?:\{(\w+)(?::?-([^}]*))?\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str
    line: int

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """``--name=value`` flags before the arguments, and the arguments after them."""
        flags: dict[str, str] = {}
        rest = self.args
        while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
            flags[match[1]] = match[2] or ""
            rest = rest[match.end() :]
        return flags, rest


@dataclass
class Stage:
    index: int
    base: str  # as written after FROM, ARGs expanded
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def expand(text: str, variables: dict[str, str]) -> str:
    """``$VAR``, ``${VAR}`` and ``${VAR:-default}`` as the Dockerfile expands them (unknown: kept)."""

    def sub(match: re.Match) -> str:
        name = match[1] or match[3]
        if name in variables and variables[name] != "":
            return variables[name]
        if match[2] is not None:
            return match[2]
        return variables.get(name, match[0])

    return _VAR.sub(sub, text)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined; comment lines dropped (as Docker does)."""
    lines: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        lines.append((start, " ".join(part for part in current if part)))
        current = []
    if current:
        lines.append((start, " ".join(current)))
    return lines


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for number, line in logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), number)
        if instruction.keyword == "FROM":
            words = instruction.flags_and_rest()[1].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), expand(words[0], global_args), name))
        elif not stages:
            if instruction.keyword == "ARG":
                key, _, default = instruction.args.partition("=")
                global_args[key.strip()] = default.strip().strip('"')
        else:
            stages[-1].instructions.append(instruction)
    return stages


def stage(stages: list[Stage], name: str) -> Stage:
    for s in stages:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r} in the Dockerfile; stages: {[s.name for s in stages]}")


def parent(stages: list[Stage], s: Stage) -> Stage | None:
    """The earlier stage ``s`` is built FROM, if it is one (not an image)."""
    for other in stages[: s.index]:
        if other.name == s.base:
            return other
    return None


def chain(stages: list[Stage], s: Stage) -> list[Stage]:
    """``s`` and the stages it builds on, base first."""
    found = [s]
    while (up := parent(stages, found[0])) is not None:
        found.insert(0, up)
    return found


def env_pairs(args: str) -> list[tuple[str, str]]:
    """``ENV a=1 b="two words"`` (and the legacy ``ENV a one value``) as pairs, unexpanded."""
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [tuple(word.split("=", 1)) for word in words]  # type: ignore[misc]


def environment(stages: list[Stage], s: Stage) -> dict[str, str]:
    """The ENV a container of ``s`` starts with, as far as this Dockerfile sets it (not the base image's)."""
    env: dict[str, str] = {}
    for st in chain(stages, s):
        for instruction in st.all("ENV"):
            for key, value in env_pairs(instruction.args):
                env[key] = expand(value, env)
    return env


def exec_form(instruction: Instruction | None) -> list[str]:
    """The argv of an ENTRYPOINT/CMD/HEALTHCHECK CMD; the shell form becomes ``/bin/sh -c``."""
    if instruction is None:
        return []
    text = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        text = instruction.flags_and_rest()[1]
        keyword, _, text = text.partition(" ")
        if keyword.upper() != "CMD":
            return []
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return ["/bin/sh", "-c", text]


def start_command(stages: list[Stage], s: Stage) -> list[str]:
    """What a container of ``s`` runs: ENTRYPOINT followed by CMD (the nearest of each in its chain)."""
    entrypoint = cmd = None
    for st in chain(stages, s):
        for instruction in st.instructions:
            if instruction.keyword == "ENTRYPOINT":
                entrypoint, cmd = instruction, None  # a new ENTRYPOINT resets an inherited CMD
            elif instruction.keyword == "CMD":
                cmd = instruction
    return exec_form(entrypoint) + exec_form(cmd)


def workdir(stages: list[Stage], s: Stage) -> str:
    current = "/"
    for st in chain(stages, s):
        for instruction in st.all("WORKDIR"):
            current = str(Path(current) / instruction.args)
    return current


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    destination: str  # absolute
    from_stage: str | None
    line: int


def copies(stages: list[Stage], s: Stage) -> list[Copy]:
    """The stage's COPY/ADD instructions, destinations made absolute against WORKDIR, ARGs expanded."""
    found = []
    current = "/"
    for st in chain(stages, s):
        args: dict[str, str] = {}
        for instruction in st.instructions:
            if instruction.keyword == "WORKDIR":
                current = str(Path(current) / instruction.args)
            elif instruction.keyword == "ARG":
                key, _, default = instruction.args.partition("=")
                args[key.strip()] = default.strip().strip('"')
            elif instruction.keyword in ("COPY", "ADD") and st is s:
                flags, rest = instruction.flags_and_rest()
                words = [expand(w, args) for w in shlex.split(rest)]
                destination = words[-1]
                if not destination.startswith("/"):
                    destination = str(Path(current) / destination) + ("/" if destination.endswith("/") else "")
                found.append(Copy(tuple(words[:-1]), destination, flags.get("from"), instruction.line))
    return found
