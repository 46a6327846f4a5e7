"""Tasks shared with forked helpers from both ends: each once, in order, failures raised here,
and no helper process left behind whatever happens."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesentinel.static.forked import HelperFailed, two_ended


def _children() -> set[int]:
    """Live child processes of this test process (other tests may have their own running)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


@pytest.fixture(autouse=True)
def _no_helper_left_behind() -> Iterator[None]:
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/TID/children (Linux) to see helper processes")
    before = _children()
    yield
    assert _children() <= before  # every helper exited and was reaped, on every path


@pytest.mark.parametrize("helpers", [1, 3])
def test_every_task_runs_once_and_results_come_back_in_order(helpers: int) -> None:
    parent = os.getpid()
    data = list(range(500))  # inherited by the helpers, never pickled

    def run(position: int) -> tuple[int, int, bool]:
        time.sleep(0.001)  # long enough that helpers and this process all take some
        return position, data[position] * 2, os.getpid() == parent

    results = two_ended(len(data), helpers, run)
    assert [r[:2] for r in results] == [(p, p * 2) for p in range(500)]
    here = [r[0] for r in results if r[2]]
    assert 0 < len(here) < len(data)  # both sides worked
    assert here == list(range(here[0], len(data)))  # this process took them from the back


def test_no_tasks_and_more_helpers_than_tasks() -> None:
    assert two_ended(0, 2, lambda p: p) == []
    assert two_ended(2, 5, lambda p: p * 10) == [0, 10]


def test_a_helper_that_raises_is_raised_here_with_its_traceback() -> None:
    parent = os.getpid()

    def run(position: int) -> int:
        if os.getpid() != parent:
            raise ValueError(f"bad input at {position}")
        time.sleep(0.01)
        return position

    with pytest.raises(HelperFailed, match=r"(?s)failed:.*ValueError: bad input at 0"):
        two_ended(20, 1, run)


def test_a_helper_killed_by_a_signal_is_an_error_not_a_silent_loss() -> None:
    parent = os.getpid()

    def run(position: int) -> int:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.01)
        return position

    with pytest.raises(HelperFailed, match="killed by signal 9"):
        two_ended(20, 1, run)


def test_a_failure_here_stops_the_helpers_and_reaps_them() -> None:
    parent = os.getpid()

    def run(position: int) -> int:
        if os.getpid() == parent:
            raise KeyboardInterrupt  # as Ctrl-C would, while helpers still work
        time.sleep(0.05)
        return position

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        two_ended(200, 2, run)
    assert time.monotonic() - started < 5  # killed, not waited for through 200 tasks


def test_without_a_process_to_fork_this_process_does_all_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # EAGAIN: a process limit

    monkeypatch.setattr(os, "fork", refuse)
    parent = os.getpid()
    assert two_ended(10, 2, lambda p: (p, os.getpid() == parent)) == [(p, True) for p in range(10)]


def test_results_larger_than_the_pipe_arrive_whole() -> None:
    """A helper's result is written in pieces the pipe can hold and read back in others."""
    results = two_ended(6, 1, lambda p: bytes([p]) * 3_000_000)
    assert [len(r) for r in results] == [3_000_000] * 6
    assert [r[0] for r in results] == list(range(6))
    assert all(r == bytes([r[0]]) * 3_000_000 for r in results)


def test_a_task_lost_with_its_helper_gets_a_stand_in_and_the_rest_goes_on() -> None:
    parent = os.getpid()

    def run(position: int) -> str:
        if position == 1 and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash in C code, as the parent sees it
        time.sleep(0.005)
        return f"done {position}"

    results = two_ended(12, 1, run, lost=lambda position, why: f"lost {position}: {why}")
    lost = [r for r in results if r.startswith("lost")]
    assert len(lost) == 1
    assert lost[0].startswith("lost 1: the scan helper process")
    assert lost[0].endswith("ended early (killed by signal 9)")
    assert [r for r in results if not r.startswith("lost")] == [
        f"done {p}" for p in range(12) if p != 1
    ]
