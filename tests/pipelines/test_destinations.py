"""Every destination checked before the work, a refused login told from an outage, each
error said once; against the real PostgreSQL server of conftest_pg.py."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from models.explain import REASON_COLUMNS
from models.scoring import LIST_COLUMNS
from pipelines import catalog, flows
from pipelines.catalog import OutputNotWritable
from pipelines.cli import app
from pipelines.database import (
    DatabaseAccessError,
    DatabaseUnavailable,
    check_database,
    read_tables_sql,
    write_list_sql,
)
from pipelines.settings import DatabaseInputs, ScoreSettings

pytestmark = pytest.mark.usefixtures("prefect_harness")
BAD_NAME = "at_risk; DROP TABLE customers"


def _with(url: str, **parts: object) -> str:
    """``url`` with some parts replaced (``password=None`` drops it)."""
    return sa.make_url(url)._replace(**parts).render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _list_frame(ids: list[str], score_date: str) -> pd.DataFrame:
    """A small list in the files' column order (as models.scoring writes it)."""
    n = len(ids)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "list": "at_risk",
            "group": "contact",
            "campaign": "2025-W22",
            "risk_rank": range(1, n + 1),
            "status": "active",
            "days_since_last_purchase": 30.0,
            "expected_gap_days": 20.0,
            "plausible_gap_days": 60.0,
            "churn_probability": 0.5,
            "expected_value": 100.0,
            "value_at_risk": 50.0,
            "segment": "regular",
            "top_reason": "service",
            "reason_confidence": 0.75,
            "reason_source": "drivers",
            "drivers_reason": "service",
            "reason_as_of": pd.NaT,
            **{column: 0.1 for column in REASON_COLUMNS},
            "top_drivers": "3 unresolved tickets",
            "recommended_action": "call",
            "action_rule": "playbook",
            "model_version": "7",
            "scored_at": pd.Timestamp("2025-06-01 03:00:00", tz="UTC"),
        }
    )
    frame.insert(1, "score_date", pd.Timestamp(score_date))
    return frame[["customer_id", "score_date", *LIST_COLUMNS[1:]]]


def _rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    sa.text(f'SELECT * FROM "{table}" ORDER BY score_date, customer_id')
                )
            ]
    finally:
        engine.dispose()


def _files(out: Path) -> dict[str, bytes]:
    # the list history (history/<date>/) included: a refused night must not touch it either
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".churn.lock"
    }


@pytest.fixture
def yesterday(postgres_url, tmp_path) -> tuple[Path, str]:
    """Yesterday's published list: files in a folder and rows in a table of its own."""
    table = f"yesterday_{secrets.token_hex(4)}"
    small = _list_frame(["C1", "C2"], "2025-06-01")
    out = tmp_path / "out"
    catalog.write_atomic({"at_risk_csv": small, "at_risk": small}, out)
    write_list_sql(small, postgres_url, table, "2025-06-01")
    yield out, table
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
    engine.dispose()


# --- a refused login is not an outage ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"password": "wrong"}, 'password authentication failed for user "churn"'),
        ({"database": "no_such_db"}, 'database "no_such_db" does not exist'),
        ({"username": "nobody"}, 'password authentication failed for user "nobody"'),
    ],
)
def test_a_refused_login_fails_at_once_naming_user_and_server(postgres_server, change, says):
    url = _with(postgres_server.url, **change)
    parsed = sa.make_url(url)
    where = f"127.0.0.1:{postgres_server.port}/{parsed.database}"
    for attempt in (
        lambda: check_database(url, "at_risk"),
        lambda: read_tables_sql(url, "transactions"),
        lambda: write_list_sql(_list_frame(["C1"], "2025-06-01"), url, "at_risk", "2025-06-01"),
    ):
        started = time.monotonic()
        with pytest.raises(DatabaseAccessError) as refused:
            attempt()
        assert time.monotonic() - started < 5
        message = str(refused.value)
        assert message == (
            f"PostgreSQL at {where} refused user {parsed.username}: {says} "
            "(a retry cannot fix this)"
        )
        assert postgres_server.password not in message


def test_a_refused_connection_is_still_an_outage():
    with pytest.raises(DatabaseUnavailable, match="is unavailable: .*Connection refused"):
        check_database(f"postgresql+psycopg://churn:pw@127.0.0.1:{_free_port()}/churn")


def test_a_password_in_pgpassfile_is_used_when_the_url_has_none(
    postgres_server, tmp_path, monkeypatch
):
    url = _with(postgres_server.url, password=None)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(DatabaseAccessError, match="refused user churn: no password supplied"):
        check_database(url)
    passfile = tmp_path / "pgpass"
    passfile.write_text(
        f"127.0.0.1:{postgres_server.port}:churn:churn:{postgres_server.password}\n"
    )
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    check_database(url, "at_risk")


# --- the role may write -------------------------------------------------------------


@pytest.fixture(scope="module")
def roles(postgres_server) -> dict[str, str]:
    """Roles with less than the list needs, and one with exactly that (on `granted`)."""
    owner = sa.create_engine(postgres_server.url)
    write_list_sql(_list_frame(["C1"], "2025-06-01"), owner, "granted", "2025-06-01")
    urls = {
        "reader": postgres_server.create_role("reader"),
        "writer": postgres_server.create_role("writer"),
        "standby": postgres_server.create_role("standby", "default_transaction_read_only = on"),
    }
    with owner.begin() as conn:
        conn.execute(sa.text("GRANT SELECT ON granted TO reader"))
        conn.execute(sa.text("GRANT SELECT, INSERT, DELETE ON granted TO writer, standby"))
    owner.dispose()
    return urls


@pytest.mark.parametrize(
    ("role", "table", "says"),
    [
        ("reader", "granted", "user reader may not write postgresql:granted (lacks INSERT, DELETE"),
        ("writer", "brand_new", "user writer may not write postgresql:brand_new (the table is new"),
        ("standby", "granted", "is read-only (a standby?): user standby cannot write"),
    ],
)
def test_a_role_that_may_not_write_the_list_is_refused_before_the_work(roles, role, table, says):
    with pytest.raises(DatabaseAccessError, match="^PostgreSQL at 127.0.0.1:") as refused:
        check_database(roles[role], table)
    assert says in str(refused.value)


def test_a_role_granted_only_the_tables_privileges_passes_and_writes(roles, postgres_url):
    check_database(roles["writer"], "granted")
    # no CREATE on the schema: the write must not need it for an existing table
    day = _list_frame(["C7", "C8"], "2025-06-02")
    assert write_list_sql(day, roles["writer"], "granted", "2025-06-02") == 2
    assert [row[0] for row in _rows(postgres_url, "granted")] == ["C1", "C7", "C8"]


def test_a_table_that_is_not_a_list_or_a_missing_schema_is_a_bad_destination(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS not_a_list (customer_id text)"))
    engine.dispose()
    with pytest.raises(ValueError, match="not_a_list: the existing table is not a churn list"):
        check_database(postgres_url, "not_a_list")
    with pytest.raises(ValueError, match="schema nowhere does not exist"):
        check_database(postgres_url, "nowhere.at_risk")


# --- the flows' pre-flight task -----------------------------------------------------


def _run_count(state) -> int:  # noqa: ANN001
    """How many times the task ran, once the API has recorded its final state (it is told
    through events, so a moment after the call returns)."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            try:
                run = client.read_task_run(state.state_details.task_run_id)
            except ObjectNotFound:
                run = None
            if run is not None and run.state_type == state.type:
                return run.run_count
            assert time.monotonic() < deadline, f"task run never recorded as {state.type}"
            time.sleep(0.2)


def test_the_preflight_retries_a_server_that_comes_back_but_not_a_refused_login(
    disposable_postgres, tmp_path, monkeypatch
):
    check = flows.check_destinations.with_options(retry_delay_seconds=[2, 2, 2])
    settings = ScoreSettings(output_table="at_risk")
    inputs = DatabaseInputs(transactions="transactions")

    monkeypatch.setenv("CHURN_DATABASE_URL", _with(disposable_postgres.url, password="wrong"))
    refused = check(inputs, tmp_path / "out", settings, return_state=True)
    assert refused.is_failed() and _run_count(refused) == 1
    with pytest.raises(DatabaseAccessError, match="password authentication failed"):
        refused.result()

    monkeypatch.setenv("CHURN_DATABASE_URL", disposable_postgres.url)
    disposable_postgres.stop()
    back = threading.Timer(1.0, disposable_postgres.start)
    back.start()
    try:
        recovered = check(inputs, tmp_path / "out", settings, return_state=True)
    finally:
        back.join()
    assert recovered.is_completed(), recovered
    assert _run_count(recovered) >= 2


def test_the_flow_checks_its_destinations_before_it_reads_a_table(
    postgres_url, yesterday, monkeypatch
):
    out, table = yesterday
    before, rows = _files(out), _rows(postgres_url, table)
    monkeypatch.setenv("CHURN_DATABASE_URL", postgres_url)
    # no such input tables: reading them first would fail on them, not on the name
    inputs = DatabaseInputs(transactions="no_transactions_here")
    with pytest.raises(ValueError, match="invalid table name 'at_risk; DROP TABLE customers'"):
        flows.nightly(inputs, out, ScoreSettings(output_table=BAD_NAME))
    monkeypatch.setenv("CHURN_DATABASE_URL", _with(postgres_url, password="wrong"))
    with pytest.raises(DatabaseAccessError):
        flows.score(inputs, out, ScoreSettings(output_table=table))
    assert _files(out) == before
    assert _rows(postgres_url, table) == rows


def _flow_runs() -> int:
    with get_client(sync_client=True) as client:
        return client.count_flow_runs()


def test_the_cli_checks_destinations_before_any_flow_run_starts(
    postgres_url, yesterday, tmp_path, monkeypatch
):
    out, table = yesterday
    before, rows, runs = _files(out), _rows(postgres_url, table), _flow_runs()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    cases = [
        ({"CHURN_DATABASE_URL": postgres_url}, out, BAD_NAME, "invalid table name"),
        ({}, out, table, f"the list table '{table}' needs a database: pass --db"),
        (
            {"CHURN_DATABASE_URL": postgres_url},
            not_a_folder / "out",
            table,
            "cannot write here (Not a directory)",
        ),
    ]
    for env, folder, out_table, says in cases:
        monkeypatch.delenv("CHURN_DATABASE_URL", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(
            app,
            [
                "nightly",
                "--transactions",
                "transactions",
                "--out",
                str(folder),
                "--out-table",
                out_table,
                "--data-dir",
                str(tmp_path / "data"),
            ],
        )
        assert result.exit_code == 2, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and says in line
    assert _flow_runs() == runs
    assert _files(out) == before
    assert _rows(postgres_url, table) == rows


def test_check_writable_probes_the_folder_and_leaves_nothing(tmp_path):
    catalog.check_writable(tmp_path / "new" / "out")
    assert list((tmp_path / "new" / "out").iterdir()) == []
    with pytest.raises(OutputNotWritable, match="cannot write here"):
        catalog.check_writable(Path("/proc/churn-out"))


# --- said once, in a real process ---------------------------------------------------


def _churn(args: list[str], url: str | None, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, with its own Prefect home in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "CHURN_DATABASE_URL"}
    env["PREFECT_HOME"] = str(cwd / ".prefect")
    if url:
        env["CHURN_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "case", ["bad name", "no database", "wrong password", "no such database", "reader"]
)
def test_a_bad_destination_is_one_line_on_stderr_and_publishes_nothing(
    case, postgres_server, roles, yesterday, tmp_path
):
    out, table = yesterday
    before, rows = _files(out), _rows(postgres_server.url, table)
    url, out_table, says = {
        "bad name": (postgres_server.url, BAD_NAME, "invalid table name"),
        "no database": (None, table, "needs a database"),
        "wrong password": (
            _with(postgres_server.url, password="wrong"),
            table,
            f"PostgreSQL at 127.0.0.1:{postgres_server.port}/churn refused user churn: "
            'password authentication failed for user "churn"',
        ),
        "no such database": (
            _with(postgres_server.url, database="gone"),
            table,
            'refused user churn: database "gone" does not exist',
        ),
        "reader": (roles["reader"], "granted", "user reader may not write postgresql:granted"),
    }[case]
    args = ["nightly", "--transactions", "transactions", "--out", str(out)]
    done = _churn([*args, "--out-table", out_table], url, tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and says in done.stderr
    assert done.stdout == ""
    assert postgres_server.password not in done.stderr
    # nothing started: no Prefect run (its database is made by the first one), no files
    assert not (tmp_path / ".prefect" / "prefect.db").exists()
    assert _files(out) == before
    assert _rows(postgres_server.url, table) == rows


def test_a_password_on_the_command_line_is_warned_about(postgres_url, tmp_path):
    args = ["nightly", "--transactions", "t", "--out", str(tmp_path), "--out-table", BAD_NAME]
    on_command_line = CliRunner().invoke(app, ["--db", postgres_url, *args])
    assert on_command_line.stderr.startswith("warning: --db carries a password")
    assert "CHURN_DATABASE_URL" in on_command_line.stderr and ".pgpass" in on_command_line.stderr
    no_password = CliRunner().invoke(app, ["--db", _with(postgres_url, password=None), *args])
    from_env = CliRunner().invoke(app, args, env={"CHURN_DATABASE_URL": postgres_url})
    for quiet in (no_password, from_env):
        assert quiet.exit_code == 2
        assert quiet.stderr.splitlines() == [quiet.stderr.strip()]
        assert quiet.stderr.startswith("error: invalid table name")


# --- the files and the table: one outcome -------------------------------------------


def test_a_table_that_refuses_the_list_leaves_the_files_unpublished(
    postgres_server, demo_tables, tmp_path, monkeypatch
):
    """Files are staged, the table written, and only then the files put in place."""
    postgres_url = postgres_server.create_database("outcome")
    engine = sa.create_engine(postgres_url)
    for kind in ("transactions", "interactions"):
        frame = pd.read_parquet(demo_tables[kind])
        frame.to_sql(kind, engine, index=False, chunksize=10_000)
    runner = CliRunner()
    data_dir, out, table = tmp_path / "data", tmp_path / "out", "one_outcome"
    monkeypatch.setenv("CHURN_DATABASE_URL", postgres_url)
    tables = ["--transactions", "transactions", "--interactions", "interactions"]
    trained = runner.invoke(app, ["train", *tables, "--data-dir", str(data_dir)])
    assert trained.exit_code == 0, trained.output
    night = ["nightly", *tables, "--score-date", "2025-12-01", "--out", str(out)]
    night += ["--out-table", table, "--data-dir", str(data_dir)]

    first = runner.invoke(app, night)
    assert first.exit_code == 0, first.output
    published, stored = _files(out), _rows(postgres_url, table)
    listed = len(pd.read_parquet(out / "at_risk.parquet")) + len(
        pd.read_parquet(out / "win_back.parquet")
    )
    assert len(stored) == listed > 2

    # the table refuses the re-run's list halfway through its rows
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                CREATE FUNCTION refuse_late_rows() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF (SELECT count(*) FROM {table} WHERE score_date = NEW.score_date)
                        >= {listed // 2} THEN
                        RAISE EXCEPTION 'row {listed // 2 + 1} refused';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER refuse BEFORE INSERT ON {table}
                    FOR EACH ROW EXECUTE FUNCTION refuse_late_rows();
                """
            )
        )
    refused = runner.invoke(app, night)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.splitlines() == [
        f"error: postgresql:{table}: the database refused the list, nothing was changed: "
        f"row {listed // 2 + 1} refused"
    ]
    assert _files(out) == published  # yesterday's files, not the refused list
    assert _rows(postgres_url, table) == stored

    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TRIGGER refuse ON {table}"))
        conn.execute(sa.text("DROP FUNCTION refuse_late_rows()"))
    engine.dispose()
    again = runner.invoke(app, night)
    assert again.exit_code == 0, again.output
    republished = _files(out)
    assert republished.keys() == published.keys()
    assert republished["at_risk.csv"] != published["at_risk.csv"]  # a new scored_at
    scored_at = pd.read_parquet(out / "at_risk.parquet")["scored_at"].iloc[0]
    assert {row[-1] for row in _rows(postgres_url, table)} == {scored_at.to_pydatetime()}


def test_schedule_refuses_a_bad_destination_before_serving(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_DATABASE_URL", _with(postgres_url, password="wrong"))
    args = ["schedule", "--transactions", "transactions", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--out-table", "at_risk"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: PostgreSQL at ") and "password authentication failed" in line
    assert "serving" not in result.output


def test_checking_file_destinations_loads_none_of_the_flows_stack(tmp_path):
    # Prefect's API and the batch processes start once the checks pass; the flows'
    # imports (xgboost, scikit-learn, MLflow) go on beside them, not before
    code = f"""
import sys
from pathlib import Path
from pipelines.cli_support import check_destinations
from pipelines.settings import InputPaths, ScoreSettings
inputs = InputPaths(transactions=Path("tx.csv"), interactions=None, customers=None)
check_destinations(inputs, Path({str(tmp_path / "out")!r}), ScoreSettings())
heavy = ("xgboost", "sklearn", "mlflow", "pipelines.flows", "pipelines.database")
print(",".join(name for name in heavy if name in sys.modules) or "none")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "none"
    assert (tmp_path / "out").is_dir()  # the check probed the real folder
