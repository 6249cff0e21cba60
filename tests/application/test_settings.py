"""Settings from the environment: which store, where, and the secret."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.cases import Acting, Cases
from application.settings import Settings, StoreLimits, load_settings, postgres_options
from application.store import CaseStore
from domain.actor import Actor
from tests import pg
from tests.conftest import register_major_project
from tests.pg import fresh_schema


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable: the secret must not be."""
    previous = os.umask(0)
    yield
    os.umask(previous)


# --- which store --------------------------------------------------------------------------
def test_postgres_dbname_selects_postgres_with_local_defaults() -> None:
    settings = load_settings({"POSTGRES_DBNAME": "ecocase_prod", "ECOCASE_SECRET": "s3cret"})
    assert settings.store == "postgres"
    assert settings.store_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "application.pg_recorder:OrderedRecorder",
        "POSTGRES_DBNAME": "ecocase_prod",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_STATEMENT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "3",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }


def test_postgres_variables_given_are_passed_on_and_others_are_not() -> None:
    settings = load_settings(
        {
            "POSTGRES_DBNAME": "ecocase",
            "POSTGRES_HOST": "db.internal",
            "POSTGRES_SCHEMA": "cases",
            "POSTGRES_POOL_SIZE": "20",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "POSTGRES_SOMETHING_ELSE": "x",
            "PGPASSWORD": "not-ours",
            "ECOCASE_SECRET": "s3cret",
        }
    )
    env = settings.store_env()
    assert env["POSTGRES_HOST"] == "db.internal"
    assert env["POSTGRES_SCHEMA"] == "cases"
    assert env["POSTGRES_POOL_SIZE"] == "20"
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"
    assert "POSTGRES_SOMETHING_ELSE" not in env
    assert "PGPASSWORD" not in env


def test_without_postgres_dbname_the_store_is_a_sqlite_file_in_the_data_dir(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data" / "ecocase"
    settings = load_settings({"ECOCASE_DATA_DIR": str(data_dir)})
    assert settings.store == "sqlite"
    assert settings.data_dir == data_dir
    env = settings.store_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(data_dir / "ecocase.sqlite")
    assert data_dir.is_dir()


def test_data_dir_defaults_to_var() -> None:
    settings = load_settings({"ECOCASE_SECRET": "s3cret"})
    assert (settings.store, settings.data_dir) == ("sqlite", Path("var"))


def test_ecocase_store_chooses_explicitly(tmp_path: Path) -> None:
    both = {"POSTGRES_DBNAME": "ecocase", "ECOCASE_DATA_DIR": str(tmp_path)}
    assert load_settings({**both, "ECOCASE_STORE": "sqlite"}).store == "sqlite"
    popo = load_settings({**both, "ECOCASE_STORE": "popo"})
    assert popo.store_env() == {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    assert (
        load_settings({"ECOCASE_STORE": "postgres", "ECOCASE_SECRET": "s"}).store_env()[
            "POSTGRES_DBNAME"
        ]
        == "ecocase"
    )


@pytest.mark.parametrize("store", ["mysql", "Postgres", "memory"])
def test_unknown_ecocase_store_is_rejected(tmp_path: Path, store: str) -> None:
    with pytest.raises(
        ValueError, match=f"ECOCASE_STORE must be postgres, sqlite or popo.*{store}"
    ):
        load_settings({"ECOCASE_STORE": store, "ECOCASE_DATA_DIR": str(tmp_path)})


def test_environment_is_read_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("POSTGRES_DBNAME", raising=False)
    monkeypatch.delenv("ECOCASE_STORE", raising=False)
    monkeypatch.setenv("ECOCASE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECOCASE_SECRET", "from-the-environment")
    monkeypatch.setenv("ECOCASE_LOG_FORMAT", "console")
    settings = load_settings()
    assert (settings.store, settings.data_dir, settings.secret) == (
        "sqlite",
        tmp_path,
        "from-the-environment",
    )
    assert settings.log_format == "console"


def test_logging_and_redis_defaults() -> None:
    settings = load_settings({"ECOCASE_STORE": "popo", "ECOCASE_SECRET": "s"})
    assert (settings.log_format, settings.log_level, settings.redis_url) == ("json", "INFO", None)
    redis = load_settings(
        {"ECOCASE_STORE": "popo", "ECOCASE_SECRET": "s", "ECOCASE_REDIS_URL": "redis://x:6379/1"}
    )
    assert redis.redis_url == "redis://x:6379/1"


# --- PostgreSQL fails fast ----------------------------------------------------------------
PG = {"ECOCASE_STORE": "postgres", "ECOCASE_SECRET": "s3cret"}


def test_postgres_waits_seconds_by_default_for_a_connection_a_statement_and_a_lock() -> None:
    settings = load_settings(PG)
    env = settings.store_env()
    assert (
        env["POSTGRES_CONNECT_TIMEOUT"],
        env["POSTGRES_STATEMENT_TIMEOUT"],
        env["POSTGRES_LOCK_TIMEOUT"],
    ) == ("2", "5", "3")
    assert settings.store_limits() == StoreLimits(
        pool_wait=2, pool_connections=5 + 10, statement_timeout=5, lock_timeout=3
    )
    assert postgres_options(env) == "-c statement_timeout=5000 -c lock_timeout=3000"


def test_each_postgres_limit_is_overridden_by_its_own_variable() -> None:
    settings = load_settings(
        {
            **PG,
            "POSTGRES_CONNECT_TIMEOUT": "7",
            "POSTGRES_STATEMENT_TIMEOUT": " 0 ",
            "POSTGRES_LOCK_TIMEOUT": "1",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "0",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "9",
        }
    )
    env = settings.store_env()
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "7"
    assert env["POSTGRES_STATEMENT_TIMEOUT"] == "0"  # PostgreSQL's "no timeout"
    assert env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] == "9"
    assert settings.store_limits() == StoreLimits(
        pool_wait=7, pool_connections=2, statement_timeout=0, lock_timeout=1
    )
    assert postgres_options(env) == "-c statement_timeout=0 -c lock_timeout=1000"


def test_an_empty_postgres_limit_is_as_good_as_unset() -> None:
    env = load_settings(
        {**PG, "POSTGRES_CONNECT_TIMEOUT": "", "POSTGRES_POOL_SIZE": " "}
    ).store_env()
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "2"
    assert "POSTGRES_POOL_SIZE" not in env  # the library's own default applies


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("POSTGRES_CONNECT_TIMEOUT", "0", "whole seconds, at least 1"),
        ("POSTGRES_CONNECT_TIMEOUT", "2.5", "whole seconds, at least 1"),
        ("POSTGRES_STATEMENT_TIMEOUT", "5s", "whole seconds, at least 0"),
        ("POSTGRES_LOCK_TIMEOUT", "-1", "whole seconds, at least 0"),
        ("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "soon", "whole seconds, at least 0"),
        ("POSTGRES_POOL_SIZE", "0", "a whole number, at least 1"),
        ("POSTGRES_MAX_OVERFLOW", "many", "a whole number, at least 0"),
    ],
)
def test_a_bad_postgres_limit_is_refused_naming_its_variable(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=f"^{variable} must be {expected}, not '{value}'$"):
        load_settings({**PG, variable: value})


def test_only_a_postgres_store_has_limits_and_a_bare_environment_sets_no_timeouts(
    tmp_path: Path,
) -> None:
    assert load_settings({"ECOCASE_DATA_DIR": str(tmp_path)}).store_limits() is None
    assert postgres_options(pg.postgres_env("public")) == ""
    built = Settings(  # as some tests build it: what is unset is the library's default
        store="postgres",
        data_dir=tmp_path,
        postgres_dsn_env={"POSTGRES_DBNAME": "x"},
        redis_url=None,
        secret="s",
        log_format="json",
        log_level="INFO",
    )
    assert built.store_limits() == StoreLimits(
        pool_wait=30, pool_connections=15, statement_timeout=0, lock_timeout=0
    )


# --- the secret ---------------------------------------------------------------------------
@pytest.mark.usefixtures("permissive_umask")
def test_local_secret_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    env = {"ECOCASE_DATA_DIR": str(tmp_path / "var")}
    first = load_settings(env).secret
    second = load_settings(env).secret
    assert first == second
    assert len(first) >= 32
    path = tmp_path / "var" / "secret"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_local_secret_differs_between_data_dirs(tmp_path: Path) -> None:
    one = load_settings({"ECOCASE_DATA_DIR": str(tmp_path / "one")}).secret
    two = load_settings({"ECOCASE_DATA_DIR": str(tmp_path / "two")}).secret
    assert one != two


def test_existing_secret_file_is_used_as_it_is(tmp_path: Path) -> None:
    kept = "kept-from-last-time-" + "k" * 20
    (tmp_path / "secret").write_text(kept + "\n")
    assert load_settings({"ECOCASE_DATA_DIR": str(tmp_path)}).secret == kept


@pytest.mark.parametrize("content", ["", "\n", "short-secret"])
def test_empty_or_short_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret").write_text(content)
    with pytest.raises(ValueError, match="shorter than 32 characters"):
        load_settings({"ECOCASE_DATA_DIR": str(tmp_path)})


def test_given_secret_is_used_and_no_secret_file_is_written(tmp_path: Path) -> None:
    settings = load_settings({"ECOCASE_DATA_DIR": str(tmp_path), "ECOCASE_SECRET": "given"})
    assert settings.secret == "given"
    assert not (tmp_path / "secret").exists()


def test_postgres_needs_a_given_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ECOCASE_SECRET must be set"):
        load_settings({"POSTGRES_DBNAME": "ecocase", "ECOCASE_DATA_DIR": str(tmp_path)})
    assert not (tmp_path / "secret").exists()


# --- the settings open working stores -----------------------------------------------------
def test_sqlite_store_from_settings_keeps_projects_across_restarts(
    tmp_path: Path, officer: Actor
) -> None:
    env = load_settings({"ECOCASE_DATA_DIR": str(tmp_path)}).store_env()
    with CaseStore(env=env) as store:
        project = register_major_project(Cases(store), Acting(officer, "req-1"))
    with CaseStore(env=env) as reopened:
        assert Cases(reopened).get(officer, project.id) == project


@pytest.mark.postgres
def test_postgres_store_from_settings_records_and_reads(officer: Actor) -> None:
    with fresh_schema() as schema:
        settings = load_settings(
            {
                "POSTGRES_DBNAME": pg.DBNAME,
                "POSTGRES_HOST": pg.HOST,
                "POSTGRES_PORT": pg.PORT,
                "POSTGRES_USER": pg.USER,
                "POSTGRES_PASSWORD": pg.PASSWORD,
                "POSTGRES_SCHEMA": schema,
                "ECOCASE_SECRET": "s3cret",
            }
        )
        assert settings.store_env()["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"
        with CaseStore(env=settings.store_env()) as store:
            project = register_major_project(Cases(store), Acting(officer, "req-1"))
        with CaseStore(env=settings.store_env()) as reopened:
            assert Cases(reopened).get(officer, project.id) == project


@pytest.mark.parametrize("value", ["y", "yes", "true", "1"])
def test_postgres_db_functions_are_refused_because_they_commit_out_of_order(value: str) -> None:
    with pytest.raises(ValueError, match="out of order"):
        load_settings({
            "POSTGRES_DBNAME": "ecocase", "POSTGRES_ENABLE_DB_FUNCTIONS": value,
            "ECOCASE_SECRET": "s" * 32,
        })  # fmt: skip
