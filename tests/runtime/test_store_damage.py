"""Read commands on a damaged store: one error line naming the file, exit 2, no traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kubesentinel.cli import main


def _store_with_incidents(tmp_path: Path) -> Path:
    stream = tmp_path / "falco.jsonl"
    stream.write_text(
        json.dumps(
            {
                "rule": "Terminal shell in container",
                "priority": "Warning",
                "time": "2026-01-01T00:00:01.000000000Z",
                "output": "a shell",
                "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-6d4cf56db6-x7k2p"},
            }
        )
        + "\n"
    )
    store = tmp_path / "ks.db"
    assert main(["monitor", "--source", str(stream), "--until-eof", "--store", str(store),
                 "--no-k8s-lookup"]) == 0  # fmt: skip
    return store


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("rules", "{not json", "JSONDecodeError"),
        ("severity", "bogus", "unknown severity"),
        ("reasons", "[1, 2]", "TypeError"),
    ],
)
def test_damaged_rows_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: str, says: str
) -> None:
    store = _store_with_incidents(tmp_path)
    [incident] = json.loads(_run(capsys, "list", "--store", str(store), "--format", "json")[1])
    db = sqlite3.connect(store)
    db.execute(f"UPDATE incidents SET {column} = ?", (value,))  # noqa: S608 (test constants)
    db.commit()
    db.close()
    for command in (["list"], ["show", incident["id"]]):
        code, _, err = _run_code(capsys, *command, "--store", str(store))
        assert code == 2
        assert "Traceback" not in err
        assert err.startswith(f"kubesentinel: error KS-E033: {store}: ")
        assert says in err
        assert "damaged data" in err


def test_a_file_that_is_no_database_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "ks.db"
    junk.write_bytes(bytes(range(256)) * 64)
    code, _, err = _run_code(capsys, "list", "--store", str(junk))
    assert code == 2
    assert "not a KubeSentinel store, or the file is corrupt" in err


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code, out, err = _run_code(capsys, *args)
    assert code == 0, err
    return code, out, err


def _run_code(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["incidents", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
