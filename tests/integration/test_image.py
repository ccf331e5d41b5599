"""The Dockerfile's install steps, run for real in a clean folder and a fresh venv.

No container engine is available here, so the test does what the build stage
does: it copies exactly what the build stage's COPY lines copy into an empty
folder, runs the build stage's RUN line there (with the image paths mapped into
a temporary folder), and then runs the final stage's ENTRYPOINT from the
resulting environment. A file the Dockerfile forgets to copy, a broken wheel
or a missing package-data file fails here, not at `docker build` time.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Dockerfile instructions by stage (continuation lines joined, comments dropped)."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            logical.append(current)
            current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in logical:
        op, _, rest = instruction.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif op == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stages.append(Stage(base, words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((op, rest))
    return args, stages


def test_dockerfile_shape() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    assert len(stages) == 2, "multi-stage: a build stage and a runtime stage"
    build, final = stages
    assert build.base == final.base and "slim" in final.base, "same slim Python base in both stages"
    # the runtime stage gets the environment from the build stage, never builds anything itself
    assert any(c.startswith(f"--from={build.name} ") for c in final.all("COPY"))
    assert not [r for r in final.all("RUN") if re.search(r"pip|apt-get|gcc|make", r)]
    user = final.all("USER")[-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"numeric non-root USER, got {user!r}"
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert final.all("EXPOSE") == ["9188"]
    assert final.all("ENTRYPOINT") == ['["pgradar", "run"]']


def test_dockerignore_admits_everything_the_build_copies() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    admitted = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.startswith("!")}
    for copy in stages[0].all("COPY"):
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert source.rstrip("/") in admitted, f".dockerignore leaves out {source}, which the build copies"
            assert (ROOT / source).exists(), source


def test_build_stage_installs_a_working_agent(tmp_path: Path) -> None:
    _, (build, final) = parse(DOCKERFILE.read_text())
    workdir = build.all("WORKDIR")[-1]
    context = tmp_path / "src"
    context.mkdir()
    for copy in build.all("COPY"):
        *sources, dest = shlex.split(copy)
        target = context / os.path.relpath(os.path.join(workdir, dest), workdir)
        for source in sources:  # Docker's rules: a folder's contents go into dest; a file into dest/ or as dest
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                path = target / origin.name if dest.endswith("/") else target
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, path)
    (run,) = build.all("RUN")
    (venv_copy,) = [c for c in final.all("COPY") if c.startswith(f"--from={build.name} ")]
    venv_in_image = venv_copy.split()[-1]
    venv = tmp_path / "venv"
    command = run.replace(venv_in_image, str(venv)).replace(workdir, str(context))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    done = subprocess.run(["sh", "-c", command], cwd=context, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"pgradar {version}" in done.stdout
    # what the runtime stage ends up with: no pip, no bytecode caches, the entrypoint works
    assert not (venv / "bin" / "pip").exists()
    assert not list(venv.rglob("__pycache__"))
    entry = [str(venv / "bin" / "pgradar"), "run", "--help"]
    helped = subprocess.run(entry, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "--listen" in helped.stdout
    assert not list(venv.rglob("__pycache__")), "the agent wrote bytecode at run time"
