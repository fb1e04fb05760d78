"""What the Dockerfile's runtime stage promises: user, binary path, working directory,
environment, port, entrypoint. Read from the Dockerfile itself (no Docker daemon needed)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    """One build stage: its base image, name and instructions (continuation lines joined)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Image:
    """The runtime stage's facts."""

    stages: list[Stage]
    runtime: Stage
    args: dict[str, str]

    @property
    def user(self) -> tuple[int, int]:
        text = self.runtime.last("USER") or "0"
        uid, _, gid = text.partition(":")
        return int(uid), int(gid or uid)

    @property
    def entrypoint(self) -> list[str]:
        return exec_form(self.runtime.last("ENTRYPOINT") or "[]")

    @property
    def workdir(self) -> str | None:
        return self.runtime.last("WORKDIR")

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.runtime.all("ENV"):
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                out[name] = value
        return out

    @property
    def exposed(self) -> list[int]:
        return [int(p.split("/")[0]) for args in self.runtime.all("EXPOSE") for p in args.split()]

    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """(from-stage or None, sources, destination) of each COPY of the runtime stage."""
        out = []
        for args in self.runtime.all("COPY"):
            words = shlex.split(args)
            source_stage = None
            plain = []
            for w in words:
                if w.startswith("--from="):
                    source_stage = w.removeprefix("--from=")
                elif not w.startswith("--"):
                    plain.append(w)
            out.append((source_stage, plain[:-1], plain[-1]))
        return out

    def installed_packages(self) -> list[str]:
        """Debian packages the runtime stage installs with apt-get install."""
        packages = []
        for args in self.runtime.all("RUN"):
            for command in re.split(r"&&|;", args):
                words = command.split()
                if "apt-get" in words and "install" in words:
                    packages += [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
        return packages


def exec_form(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return ["/bin/sh", "-c", text]
    return [str(v) for v in value]


def parse(path: Path) -> Image:
    """Parses `path` into stages (comments dropped, `\\` continuations joined)."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            lines.append(line)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    if not stages:
        raise ValueError(f"{path}: no FROM")
    return Image(stages=stages, runtime=stages[-1], args=args)
