"""deploy/Dockerfile, read statically (no container engine runs here): a pinned base, a non-root
user matching the chart, and nothing to build with in the final stage."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.chart import CHART, DEPLOY

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|clang|cargo|rustc|apt-get|apk|"
                         r"pip wheel|setup\.py)\b")  # fmt: skip


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_every_base_image_is_pinned_by_digest() -> None:
    args = dict(
        rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest
    )
    froms = [rest.split()[0] for word, rest in _instructions() if word == "FROM"]
    assert len(froms) == 2
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)
        assert re.search(r"@sha256:[0-9a-f]{64}$", resolved), resolved


def test_the_final_stage_runs_as_the_charts_non_root_user() -> None:
    users = [rest for word, rest in _final_stage() if word == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert (int(uid), int(gid)) == (values["uid"], values["gid"])
    assert int(uid) >= 10000  # a high UID, outside the host's range (KS-0024)
    assert ("ENTRYPOINT", '["kubesentinel"]') in _final_stage()


def test_no_build_tools_in_the_final_stage() -> None:
    for word, rest in _final_stage():
        if word == "RUN":
            assert not BUILD_TOOLS.search(rest), rest
        if word in ("COPY", "ADD"):
            pytest.fail(f"the final stage copies files in ({word} {rest}); it installs wheels only")
    installs = [rest for word, rest in _final_stage() if word == "RUN" and "install" in rest]
    assert any("--no-index" in rest and "from=builder" in rest for rest in installs)


def test_writes_go_to_tmp_for_a_read_only_root() -> None:
    env = " ".join(rest for word, rest in _final_stage() if word == "ENV")
    assert "HOME=/tmp" in env
    assert "TMPDIR=/tmp" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
