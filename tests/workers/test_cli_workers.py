"""The worker commands of ``ecocase`` refuse to start without what they need, with exit status 2
and a message that says what is missing (they never start half-configured)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from interfaces.cli import main

SECRET = "ecocase-cli-tests-secret-0123456789-abcdef"
ECOCASE = Path(sys.executable).with_name("ecocase")


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The embedded default in a folder of its own, with no Redis configured."""
    for name in list(os.environ):
        if name.startswith(("ECOCASE_", "POSTGRES_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ECOCASE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ECOCASE_STORE", "popo")
    monkeypatch.setenv("ECOCASE_SECRET", SECRET)


@pytest.mark.parametrize(
    "argv",
    [
        ["worker"],
        ["relay"],
        ["scheduler"],
        ["dead-letters", "list"],
        ["dead-letters", "redrive", "--all"],
    ],
    ids=" ".join,
)
def test_a_worker_command_without_redis_exits_2_saying_so(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    command = argv[0]
    assert err.startswith(f"ecocase: 'ecocase {command}' is a production process")
    assert "needs ECOCASE_REDIS_URL" in err
    assert "'ecocase serve' runs the relay and a worker itself" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_an_empty_redis_url_counts_as_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECOCASE_REDIS_URL", "")
    assert main(["relay"]) == 2
    assert "needs ECOCASE_REDIS_URL" in capsys.readouterr().err


def test_redrive_without_ids_or_all_exits_2_before_touching_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECOCASE_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    assert main(["dead-letters", "redrive"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "ecocase: redrive needs --id MESSAGE_ID (repeatable) or --all\n"


def test_dead_letters_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dead-letters"])
    assert exited.value.code == 2
    assert "list" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["dead-letters", "purge"])
    assert exited.value.code == 2
    assert "invalid choice: 'purge'" in capsys.readouterr().err


def test_the_installed_command_exits_2_without_redis(tmp_path: Path) -> None:
    """The console script itself (``sys.exit(main())``), as an operator runs it."""
    assert ECOCASE.exists(), f"the ecocase script is not installed beside {sys.executable}"
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(ECOCASE), "worker"], capture_output=True, text=True, timeout=60,
        env={**os.environ}, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "needs ECOCASE_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
