"""The Dockerfile's essentials, read statically (CI has no Docker daemon to build it with)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|^DATABASE_URL$|KEY$", re.IGNORECASE)
"""Settings that hold a secret (DATABASE_URL may carry a password): never baked into an image."""

NEEDED = ("pyproject.toml", "constraints.txt", "README.md", "bot", "core", "dialogs", "policies", "templates")
"""What the image installs and runs from (README.md: pyproject's readme)."""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction: comments dropped, continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = pending + stripped
        pending = ""
        word, _, rest = whole.partition(" ")
        result.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def env_names(args: str) -> list[str]:
    """The variable names an ENV (or ARG) instruction sets: `A=1 B=2` or the legacy `A 1`."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [words[0]]
    return [w.split("=", 1)[0] for w in words]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def only(dockerfile: list[tuple[str, str]], word: str) -> list[str]:
    return [args for instr, args in dockerfile if instr == word]


def test_parser_joins_continuations_and_reads_env_forms() -> None:
    parsed = instructions("# c\nFROM x\nRUN a \\\n    && b\nENV A=1 \\\n    B=2\nENV C 3\n")
    assert parsed == [("FROM", "x"), ("RUN", "a && b"), ("ENV", "A=1 B=2"), ("ENV", "C 3")]
    assert env_names("A=1 B=2") == ["A", "B"] and env_names("C 3") == ["C"]
    assert SECRET_NAMES.search("MicrosoftAppPassword") and SECRET_NAMES.search("DATABASE_URL")
    assert not SECRET_NAMES.search("OPSROOM_AUDIT_SIGNING_KEY_FILE") and not SECRET_NAMES.search("PORT")


def test_base_is_python_311_slim_pinned_to_a_release(dockerfile: list[tuple[str, str]]) -> None:
    (base,) = only(dockerfile, "FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base


def test_runs_as_a_non_root_user_after_the_last_install(dockerfile: list[tuple[str, str]]) -> None:
    words = [instr for instr, _ in dockerfile]
    users = [i for i, w in enumerate(words) if w == "USER"]
    assert users, "no USER: the bot would run as root"
    last_user = dockerfile[users[-1]][1].split(":")[0]
    assert last_user not in ("root", "0")
    assert max(i for i, w in enumerate(words) if w == "RUN") < users[-1], "a RUN after USER runs as the bot"


def test_installs_the_pinned_constraints_that_make_setup_uses(dockerfile: list[tuple[str, str]]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    setup = re.search(r"pip install .*-c (\S+) .*\.\[dev\]", makefile)
    assert setup, "make setup no longer installs with -c CONSTRAINTS: update this test and the Dockerfile"
    installs = [run for run in only(dockerfile, "RUN") if "pip install" in run]
    assert installs and all(f"-c {setup.group(1)}" in run for run in installs), installs
    assert not any("[dev]" in run for run in installs), "the image needs no test tools"


def test_no_secret_is_baked_in(dockerfile: list[tuple[str, str]]) -> None:
    names = [n for instr, args in dockerfile if instr in ("ENV", "ARG") for n in env_names(args)]
    assert names, "the image sets HOST and PORT at least"
    assert not [n for n in names if SECRET_NAMES.search(n)]


def test_listens_on_all_interfaces_on_3978(dockerfile: list[tuple[str, str]]) -> None:
    env = " ".join(only(dockerfile, "ENV"))
    assert "HOST=0.0.0.0" in env.split() and "PORT=3978" in env.split()
    assert only(dockerfile, "EXPOSE") == ["3978"]


def test_health_is_checked_on_healthz_with_python(dockerfile: list[tuple[str, str]]) -> None:
    (check,) = only(dockerfile, "HEALTHCHECK")
    assert "/healthz" in check and "python" in check
    assert "curl" not in check and "wget" not in check, "slim images have neither"


def test_serves_by_default_and_migrates_separately(dockerfile: list[tuple[str, str]]) -> None:
    (cmd,) = only(dockerfile, "CMD")
    assert json.loads(cmd) == ["python", "-m", "bot", "serve"]
    assert not only(dockerfile, "ENTRYPOINT"), "an entrypoint would get in the way of `python -m bot db upgrade`"
    assert not any("db upgrade" in run for run in only(dockerfile, "RUN")), "migrations are not a build step"


def test_dockerignore_keeps_secrets_and_state_out_but_the_code_in() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    excludes = [p for p in patterns if p and not p.startswith(("#", "!"))]
    for private in (".env", "var", ".venv", ".git"):
        assert private in excludes, private
    assert any(fnmatch.fnmatch("audit-signing-key.pem", p) for p in excludes), "no private keys in the context"
    for path in NEEDED:
        assert (ROOT / path).exists(), path
        assert not any(fnmatch.fnmatch(path, p.rstrip("/")) for p in excludes), f"{path} is needed in the image"
