"""Retention classification: the precedence of hold, incident evidence, rule, tier and default;
the context window's bounds; the config's overrides of the policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.config import ForensicsConfig
from kubesentinel.errors import ConfigError, PolicyError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy import load_policy
from kubesentinel.vault.retention import (
    DAY_NS,
    Action,
    Classifier,
    FacetInfo,
    Window,
    decide,
    policy_files,
    policy_from_config,
)

S = 1_000_000_000
T = 1_000_000 * S
POLICY = """\
version: 1
context: {before_seconds: 60, after_seconds: 30}
classes:
  audit: {keep_days: 700, evict_rank: 50}
  chatter: {keep_days: 30, rollup_after_days: 2, evict_rank: 5}
tiers:
  critical: audit
  debug: chatter
rules:
  - name: ci-is-chatter
    class: chatter
    match: {namespaces: ["ci-*"]}
  - name: shells-signal
    class: audit
    match: {incident: [signal], rules: ["*shell*"]}
"""
WEB = ("c", "prod", "Deployment", "web")
FACETS = {
    1: FacetInfo("Terminal shell", Priority.NOTICE, "syscall", *WEB),
    2: FacetInfo("Read sensitive file", Priority.CRITICAL, "syscall", *WEB),
    3: FacetInfo("Read sensitive file", Priority.CRITICAL, "syscall", "c", "ci-7", "Job", "b"),
    4: FacetInfo("Noisy", Priority.DEBUG, "syscall", "c", "other", "Pod", "x"),
    5: FacetInfo("Quiet", Priority.NOTICE, "syscall", "c", "other", "Pod", "x"),
}


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def classifier(policy_path: Path, *, held: bool = False) -> Classifier:
    policy = load_policy([policy_path])
    window = Window(WEB, T - 60 * S, T + 100 * S + 30 * S, held=held)
    held_seqs = frozenset({7}) if held else frozenset()
    return Classifier(policy, FACETS, [window], held_seqs, lambda _rule: ())


# (time, incident seq, role, facet, held) -> (class, why)
PRECEDENCE = [
    # 1. a hold wins over everything: the event of a held incident, and its window's events
    ((T, 7, None, 2, True), ("hold", "hold")),
    ((T - 10 * S, None, None, 1, True), ("hold", "hold")),
    # 2. incident evidence: an event of an incident, or in one's window on its workload
    ((T, 7, None, 2, False), ("incident", "incident")),
    ((T, 7, 1, 4, False), ("incident", "incident")),
    ((T - 60 * S, None, None, 1, False), ("incident", "incident")),
    # 3. the first matching rule (outside any window), over the tier
    ((T - 61 * S, None, None, 3, False), ("chatter", "rule ci-is-chatter")),
    # 4. the tier of the priority when no rule matches
    ((T - 61 * S, None, None, 2, False), ("audit", "tier critical")),
    ((T - 61 * S, None, None, 4, False), ("chatter", "tier debug")),
    # 5. the default
    ((T - 61 * S, None, None, 5, False), ("default", "default")),
]


@pytest.mark.parametrize(("event", "expected"), PRECEDENCE)
def test_precedence(
    policy_path: Path,
    event: tuple[int, int | None, int | None, int, bool],
    expected: tuple[str, str],
) -> None:
    time_ns, incident, role, facet, held = event
    verdict = classifier(policy_path, held=held).verdict(time_ns, incident, role, facet)
    assert (verdict.class_name, verdict.why) == expected
    assert verdict.protected == (expected[0] in {"hold", "incident"})


def test_the_incident_link_of_a_stored_event_reaches_rules(policy_path: Path) -> None:
    """Once an incident no longer protects it, a signal matches `incident: [signal]` rules;
    classify's static part is what decides then."""
    c = classifier(policy_path)
    assert c.static(1, "signal").why == "rule shells-signal"
    assert c.static(1, None).why == "default"


@pytest.mark.parametrize(
    ("offset_s", "inside"),
    [(-60, True), (-61, False), (130, True), (131, False), (0, True)],
)
def test_context_window_bounds_are_inclusive(
    policy_path: Path, offset_s: int, inside: bool
) -> None:
    verdict = classifier(policy_path).verdict(T + offset_s * S, None, None, 1)
    assert (verdict.class_name == "incident") == inside


def test_window_of_another_workload_does_not_protect(policy_path: Path) -> None:
    verdict = classifier(policy_path).verdict(T, None, None, 4)  # other/Pod/x, inside the time
    assert verdict.class_name == "chatter"


@given(
    spans=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 200)), min_size=1, max_size=8),
    probe=st.integers(-10, 1300),
)
def test_overlapping_windows_protect_exactly_their_union(
    spans: list[tuple[int, int]], probe: int
) -> None:
    policy = load_policy([])
    windows = [Window(WEB, start, start + width, held=False) for start, width in spans]
    c = Classifier(policy, FACETS, windows, frozenset(), lambda _rule: ())
    expected = any(start <= probe <= start + width for start, width in spans)
    assert (c.verdict(probe, None, None, 1).class_name == "incident") == expected


def test_decide_by_age(policy_path: Path) -> None:
    policy = load_policy([policy_path])
    c = classifier(policy_path)
    chatter = c.verdict(0, None, None, 4)
    assert decide(policy, chatter, 0, 2 * DAY_NS - 1) is Action.KEEP
    assert decide(policy, chatter, 0, 2 * DAY_NS) is Action.ROLLUP
    assert decide(policy, chatter, 0, 30 * DAY_NS) is Action.EXPIRE
    held = classifier(policy_path, held=True).verdict(T, 7, None, 2)
    assert decide(policy, held, 0, 10_000 * DAY_NS) is Action.KEEP


def test_tags_are_read_once_per_rule_when_a_rule_matches_tags(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text("rules:\n  - {name: t, class: default, match: {tags: [telemetry]}}\n")
    asked: list[str] = []

    def tags_of(rule: str) -> tuple[str, ...]:
        asked.append(rule)
        return ("telemetry",)

    c = Classifier(load_policy([path]), FACETS, [], frozenset(), tags_of)
    assert c.verdict(0, None, None, 4).why == "rule t"
    assert c.verdict(1, None, None, 4).why == "rule t"
    assert asked == ["Noisy"]


def test_config_overrides_the_window_and_the_rollup_age(policy_path: Path) -> None:
    config = ForensicsConfig(
        policies=(str(policy_path),), context_window_s=5, rollup_after_days=1, retention_days=9
    )
    policy = policy_from_config(config)
    assert (policy.context_before_s, policy.context_after_s) == (5, 5)
    assert policy.classes["chatter"].rollup_after_days == 1
    assert policy.classes["audit"].rollup_after_days is None  # never rolled up stays so
    assert policy.classes["default"].keep_days == 9


def test_a_rollup_age_not_below_keep_days_is_refused(policy_path: Path) -> None:
    config = ForensicsConfig(policies=(str(policy_path),), rollup_after_days=30)
    with pytest.raises(ConfigError, match="must be less than class 'chatter'"):
        policy_from_config(config)


def test_policy_directories_and_missing_paths(tmp_path: Path, policy_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a policy")
    assert policy_files([str(tmp_path)]) == [policy_path]
    with pytest.raises(ConfigError, match="no such policy file") as info:
        policy_files([str(tmp_path / "missing.yaml")])
    assert info.value.file == str(tmp_path / "missing.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"holds no \.yaml policy file"):
        policy_files([str(empty)])


def test_a_bad_policy_file_named_in_the_config_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nclasses:\n  noise:\n    keep_days: -3\n    evict_rank: 1\n")
    with pytest.raises(PolicyError) as info:
        policy_from_config(ForensicsConfig(policies=(str(path),)))
    assert (info.value.file, info.value.line) == (str(path), 4)
