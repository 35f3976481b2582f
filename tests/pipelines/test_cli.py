"""The `churn` command line, in-process, against the real flows and a real MLflow store."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def test_help_lists_the_command_contract():
    result = invoke("--help")
    for command in ("simulate", "features", "train", "score", "nightly", "schedule"):
        assert command in result.output


def test_simulate_features_train_score(tmp_path):
    raw, store, out = tmp_path / "raw", tmp_path / "store", tmp_path / "out"
    result = invoke("simulate", "--customers", 800, "--seed", 5, "--out", raw)
    assert result.exit_code == 0, result.output
    for name in ("transactions", "interactions", "customers", "truth"):
        assert f"{raw / name}.parquet" in result.output
    truth = pd.read_parquet(raw / "truth.parquet")
    assert list(truth.columns)[:4] == ["customer_id", "churned", "churn_date", "reason"]

    tables = [
        "--transactions",
        raw / "transactions.parquet",
        "--interactions",
        raw / "interactions.parquet",
        "--customers",
        raw / "customers.parquet",
    ]
    result = invoke("features", *tables, "--cutoff", "2025-06-01", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"features: {out / 'features.parquet'}" in result.output

    result = invoke("train", *tables, "--horizon-days", 90, "--data-dir", store)
    assert result.exit_code == 0, result.output
    assert "models:/churn@champion (version 1)" in result.output
    assert "promoted: no champion that can be evaluated" in result.output
    assert f"sqlite:///{(store / 'mlflow' / 'mlflow.db').resolve()}" in result.output
    # long stages say how far they got: off a terminal, stderr stays for errors and the
    # run log keeps each stage's summary line
    assert "training features" not in result.stderr
    run_log = (store / "logs" / "churn.log").read_text()
    assert re.search(r"training features: \d+ cutoffs done in \d+ s$", run_log, re.M)
    assert "so far" not in run_log

    result = invoke("score", *tables, "--top", 5, "--out", out, "--data-dir", store)
    assert result.exit_code == 0, result.output
    assert f"at_risk_csv: {out / 'at_risk.csv'}" in result.output
    assert len(pd.read_csv(out / "at_risk.csv")) == 5
    assert (
        "explaining customers (SHAP): 1 chunks done in"
        in (store / "logs" / "churn.log").read_text()
    )
    assert (out / "scores.parquet").exists()


def test_bad_input_exits_2_with_a_clear_message(tmp_path):
    bad = tmp_path / "transactions.csv"
    bad.write_text("customer_id,timestamp,amount\nA,2024-01-01,10\nB,not a date,5\n")
    result = invoke("features", "--transactions", bad, "--cutoff", "2024-02-01", "--out", tmp_path)
    assert result.exit_code == 2
    assert "transactions.csv" in result.output and "'timestamp'" in result.output
    assert "row 2" in result.output
    assert not (tmp_path / "features.parquet").exists()


def test_missing_column_is_named(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,date,amount\nA,2024-01-01,10\n")
    result = invoke("features", "--transactions", bad, "--cutoff", "2024-02-01", "--out", tmp_path)
    assert result.exit_code == 2
    assert "tx.csv" in result.output and "timestamp" in result.output


def test_mlflow_tracking_uri_overrides_the_embedded_store(tmp_path, monkeypatch, demo_tables):
    server_db = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{server_db}")
    monkeypatch.chdir(tmp_path)  # artifacts of a foreign store land relative to cwd
    result = invoke(
        "train", "--transactions", demo_tables["transactions"], "--data-dir", tmp_path / "data"
    )
    assert result.exit_code == 0, result.output
    assert f"MLflow store: sqlite:///{server_db}" in result.output
    assert server_db.exists()
    assert not (tmp_path / "data" / "mlflow" / "mlflow.db").exists()


def test_an_unreachable_tracking_server_is_one_clear_line(tmp_path, monkeypatch, demo_tables):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = invoke("train", "--transactions", demo_tables["transactions"])
    assert result.exit_code == 2
    assert "error: MLflow tracking store http://127.0.0.1:9 is unavailable" in result.output


def test_score_nightly_and_schedule_take_the_same_scoring_options():
    """One definition (ScoringOptions): no flag of one scoring command is missing from another."""
    from dataclasses import fields

    import typer

    from pipelines.cli_options import ScoringOptions

    commands = typer.main.get_command(app).commands

    def flags(name: str) -> dict[str, tuple]:
        return {
            p.name: (tuple(p.opts), p.type_descriptor.annotation, p.default, p.required, p.help)
            for p in commands[name].params
        }

    shared = {f.name for f in fields(ScoringOptions)}
    assert {"budget", "explain_all", "score_date", "top", "out_table", "engine"} <= shared
    assert flags("score") == flags("nightly")
    assert set(flags("score")) == shared
    schedule = flags("schedule")
    assert set(schedule) == shared | {"cron", "timezone"}
    assert {name: schedule[name] for name in shared} == flags("score")
    assert {"engine", "dask_address"} <= set(flags("features"))


def _run_cli_in_a_fresh_process(tmp_path, *args: str):
    """The CLI in a new interpreter; returns its exit code, stderr and which heavy
    libraries it had imported by the time it exited."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from pipelines.cli import app\n"
        "try:\n"
        f"    app({list(args)!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in ('prefect', 'mlflow', 'xgboost', 'dask') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.parametrize("command", ["score", "nightly", "train", "features"])
def test_a_bad_input_is_answered_before_prefect_mlflow_or_xgboost_load(tmp_path, command):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,timestamp\nA,2024-01-01\n")
    args = ["--transactions", str(bad)]
    args += {"train": [], "features": ["--cutoff", "2024-02-01"]}.get(command, [])
    args += [] if command == "train" else ["--out", str(tmp_path / "out")]
    outcome, stderr = _run_cli_in_a_fresh_process(tmp_path, command, *args)
    assert outcome == {"code": 2, "heavy": []}
    assert stderr.strip() == (
        "error: tx.csv: missing required column 'amount'; found columns 'customer_id', 'timestamp'"
    )
    missing = tmp_path / "missing.csv"
    args[1] = str(missing)
    outcome, stderr = _run_cli_in_a_fresh_process(tmp_path, command, *args)
    assert outcome == {"code": 2, "heavy": []}
    assert stderr.strip() == f"error: {missing}: file not found"


def test_a_bad_score_date_is_one_line_before_any_run(tmp_path, demo_tables):
    result = invoke(
        "score",
        "--transactions",
        demo_tables["transactions"],
        "--score-date",
        "soon",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 2
    assert "error: --score-date 'soon' is not a date; expected YYYY-MM-DD" in result.output


def test_features_from_files_run_without_prefect_and_write_nothing_else(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    # names as a spreadsheet exports them: the flow matches them ignoring case and spaces
    (raw / "tx.csv").write_text(
        "\ufeffCustomer_ID , TimeStamp,AMOUNT,extra\nA,2024-01-01,10,x\nA,2024-01-20,5,y\n"
        "B,2024-01-05,7,z\n"
    )
    out = tmp_path / "out"
    args = ["features", "--transactions", str(raw / "tx.csv"), "--cutoff", "2024-02-01"]
    outcome, stderr = _run_cli_in_a_fresh_process(tmp_path, *args, "--out", str(out))
    assert outcome == {"code": 0, "heavy": []}, stderr
    features = pd.read_parquet(out / "features.parquet")
    assert features["customer_id"].tolist() == ["A", "B"]
    assert features["lifetime_purchases"].tolist() == [2, 1]
    # the run wrote its output and nothing in the folder it was started from
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_features_without_prefect_equal_the_flows(tmp_path, demo_tables):
    from pipelines.flows import build_features
    from pipelines.one_shot import feature_file
    from pipelines.settings import InputPaths

    inputs = InputPaths(
        transactions=demo_tables["transactions"],
        interactions=demo_tables["interactions"],
        customers=demo_tables["customers"],
    )
    said: list[tuple[str, bool]] = []
    path, customers = feature_file(
        inputs, "2025-06-01", tmp_path / "direct", say=lambda *line: said.append(line)
    )
    flow_path = build_features(inputs, "2025-06-01", tmp_path / "flow")
    direct, flow = pd.read_parquet(path), pd.read_parquet(flow_path)
    pd.testing.assert_frame_equal(direct, flow)
    assert customers == len(flow) > 0
    assert (f"{customers} customers -> {path}", False) in said


CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.mark.parametrize(
    "name", ["missing_column.csv", "empty_table.csv", "zero_bytes.csv", "not_utf8.csv"]
)
def test_the_pre_check_says_what_the_flow_says(name):
    from features.contracts import InputError
    from pipelines.catalog import read_table
    from pipelines.preflight_inputs import check_input_file

    with pytest.raises(InputError) as flow:
        read_table(CORPUS / name, "transactions")
    with pytest.raises(InputError) as early:
        check_input_file(CORPUS / name, "transactions")
    # pandas counts a bad byte from its read buffer, the pre-check from the file's start
    assert re.sub(r"byte \d+", "byte N", str(early.value)) == re.sub(
        r"byte \d+", "byte N", str(flow.value)
    )


def test_the_pre_check_of_parquet_reads_the_schema_as_the_flow_does(tmp_path):
    from features.contracts import InputError
    from pipelines.catalog import read_table
    from pipelines.preflight_inputs import check_input_file

    path = tmp_path / "tx.parquet"
    pd.DataFrame({"Customer_ID": ["a"], "timestamp": ["2024-01-01"], "Amount": [1.0]}).to_parquet(
        path
    )
    check_input_file(path, "transactions")  # the flow reads it: so does the pre-check
    assert len(read_table(path, "transactions").frame) == 1
    stored_index = pd.DataFrame({"timestamp": ["2024-01-01"], "amount": [1.0]})
    stored_index.index = pd.Index(["a"], name="customer_id")
    stored_index.to_parquet(path)
    with pytest.raises(InputError) as flow:
        read_table(path, "transactions")
    with pytest.raises(InputError) as early:
        check_input_file(path, "transactions")
    assert str(early.value) == str(flow.value)
    assert "missing required column 'customer_id'" in str(early.value)
    pd.DataFrame({"customer_id": [], "timestamp": [], "amount": []}).to_parquet(path)
    with pytest.raises(InputError, match="tx.parquet: the transactions table is empty"):
        check_input_file(path, "transactions")


_EARLY = """
import sys
from pathlib import Path

import httpx
import psutil

from pipelines.cli_support import set_environment, start_early

set_environment()
from pipelines.settings import ScoreSettings

api_started = start_early(ScoreSettings(data_dir=Path(sys.argv[1]), feature_batches=4))
family = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
assert any("forkserver" in line for line in family), family  # booting beside this one
api_started()
from prefect import flow, get_client
from prefect.server.api.server import SubprocessASGIServer

server = SubprocessASGIServer()
assert httpx.get(server.api_url + "/health").status_code == 200


@flow
def where() -> str:
    with get_client(sync_client=True) as client:
        return str(client.api_url)


assert where().rstrip("/") == server.api_url, (where(), server.api_url)
servers = [p for p in psutil.Process().children(recursive=True) if "uvicorn" in p.cmdline()]
assert len(servers) == 1, servers
print("one early server")
"""


def test_the_prefect_api_and_the_batch_processes_start_while_the_flows_import(tmp_path):
    """Started before the flows are imported, and the flow then uses that same server."""
    assert "one early server" in _fresh_process(_EARLY, tmp_path, str(tmp_path))


def _fresh_process(script: str, tmp_path, *args: str) -> str:
    """``script``'s output, run in a fresh Python with no Prefect API named."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


_SPAWN = """
import subprocess
import sys

import httpx

from pipelines.cli_support import adopt_prefect_api, set_environment, spawn_prefect_api

set_environment()
port, process = spawn_prefect_api()
# the server's process runs before this one has loaded Prefect's server at all
assert "prefect.server.api.server" not in sys.modules
assert process.poll() is None
from prefect import flow, get_client
from prefect.server.api.server import SubprocessASGIServer

server = SubprocessASGIServer()
adopt_prefect_api(server, port, process)
assert server.port == port and server.server_process is process, (server.port, port)


@flow
def where() -> str:
    with get_client(sync_client=True) as client:
        return str(client.api_url)


assert where().rstrip("/") == f"http://127.0.0.1:{port}/api", where()
server.stop()
assert process.poll() is not None  # stopped as Prefect's own

# a process that never answers (it exits at once) is not adopted: Prefect starts its own
gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
adopt_prefect_api(server, 8999, gone)
assert server.running and server.port != 8999, server.port
assert httpx.get(server.api_url + "/health").status_code == 200
server.stop()
print("spawned, adopted, stopped")
"""


def test_the_prefect_api_process_starts_before_prefects_server_module_loads(tmp_path):
    """The server's process is spawned first, then handed to Prefect's temporary server,
    which its client uses and which stops it; one that never answers gives way to
    Prefect's own start."""
    assert "spawned, adopted, stopped" in _fresh_process(_SPAWN, tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        ["--verbose", "simulate"],
        ["simulate", "--verbose"],
        ["simulate", "-v"],
        ["-v", "simulate", "-v"],
    ],
)
def test_verbose_is_taken_before_or_after_the_command(tmp_path, args):
    from pipelines.cli_support import VERBOSE

    command = args.index("simulate") + 1
    args[command:command] = ["--customers", "30", "--out", str(tmp_path)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert VERBOSE["on"]
    assert invoke("simulate", "--customers", 30, "--out", tmp_path).exit_code == 0
    assert not VERBOSE["on"]
