"""What the `churn` commands share around a run: environment defaults, the one line a
user sees for an expected error, and where Prefect's logs go.

Nothing here imports Prefect, MLflow or XGBoost at import time: the CLI checks its
arguments and input files first (:mod:`pipelines.preflight_inputs`), and only then
loads them.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from pipelines.memory import map_large_blocks

if TYPE_CHECKING:
    from pipelines.settings import CommonSettings, DatabaseInputs, InputPaths, ScoreSettings

# Prefect's run logs (progress, retries, failures with tracebacks), under --data-dir
RUN_LOG = Path("logs") / "churn.log"
VERBOSE: dict[str, bool] = {"on": False}
# --db: the table options name PostgreSQL tables, not files
DATABASE: dict[str, bool] = {"on": False}


def set_environment() -> None:
    """Embedded defaults: Prefect state in the project, no telemetry, quiet MLflow."""
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the ephemeral API starts in ~5-20 s; a busy nightly box needs more than the 20 s default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # fail over a down tracking server in seconds, not MLflow's default minutes of retries;
    # the flows retry the whole step with their own backoff
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # XGBoost's OpenMP threads busy-wait by default, which makes training ~10x slower when
    # anything else shares a small machine's cores; must be set before xgboost loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    map_large_blocks()


def start_early(settings: CommonSettings, preload: tuple[str, ...] = ()) -> Callable[[], None]:
    """Start what the flow will wait for, in processes of their own, while this one goes
    on to import the flows (~5 s): Prefect's ephemeral API server (~5 s to answer) and,
    for customer batches, the server batch processes fork from, importing ``preload``
    besides its usual modules. Called once the inputs passed their checks.

    Returns the call that waits until the API answers; the flow must not start before.
    """
    if settings.feature_batches and settings.engine == "local" and settings.batch_processes != 1:
        from pipelines.processes import start_forkserver

        start_forkserver(preload)
    from prefect.settings import PREFECT_API_URL  # read here: settings are per thread

    if PREFECT_API_URL.value():
        return lambda: None  # the user's server (or a test harness's)
    api = threading.Thread(target=_start_prefect_api, name="prefect-api", daemon=True)
    api.start()
    return api.join


def _start_prefect_api() -> None:
    # a failure here is the flow's to report: its client starts the server again
    with suppress(Exception):
        server = spawn_prefect_api()
        from prefect.server.api.server import SubprocessASGIServer

        adopt_prefect_api(SubprocessASGIServer(), *server)


def spawn_prefect_api() -> tuple[int, subprocess.Popen]:
    """Start the uvicorn process of Prefect's temporary server on a free port, as
    ``SubprocessASGIServer`` does, without importing ``prefect.server`` here first.

    That import (~2.3 s, holding the GIL beside the flows' imports) otherwise comes
    before the ~4 s the server takes to answer; this way both run beside the flows'.
    """
    import prefect
    from prefect.settings import get_current_settings

    port = _free_port()
    env = {
        **os.environ,
        # as SubprocessASGIServer._run_uvicorn_command: no UI, an ephemeral server
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent)]
    args += ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--log-level", "error", "--lifespan", "on"]
    return port, subprocess.Popen(args, env=env)


def adopt_prefect_api(server: Any, port: int, process: subprocess.Popen) -> None:
    """Make ``process`` (from :func:`spawn_prefect_api`) Prefect's temporary server
    ``server`` (the ``SubprocessASGIServer`` its client asks for) once it answers; the
    server stops it at exit as its own. If it fails, it is stopped and Prefect's own
    start runs instead."""
    if not all(hasattr(server, name) for name in ("port", "server_process", "running")):
        process.terminate()  # another Prefect: its own start
        server.start()
        return
    import atexit

    import httpx
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    with httpx.Client() as client:
        while process.poll() is None and time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    server.port, server.server_process, server.running = port, process, True
                    atexit.register(server.stop)
                    # the line Prefect's own start logs (its stop logs the other)
                    logging.getLogger("prefect").info(
                        "Started temporary server on %s", server.address
                    )
                    return
            time.sleep(0.1)
    process.terminate()  # lost its port, or never answered
    server.start()


def _free_port() -> int:
    # as SubprocessASGIServer: a random port of 8000-8999 that binds now
    for _ in range(10):
        port = random.randrange(8000, 9000)  # noqa: S311 - not a secret
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port
        time.sleep(random.uniform(0.1, 0.5))  # noqa: S311
    raise RuntimeError("no free port for the Prefect API in 8000-8999")


def tracking_uri() -> str | None:
    """The user's tracking server, if they named one (read before MLflow touches the env)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def fail(exc: Exception) -> NoReturn:
    """The one line a user sees for an expected error (the details are in the run log)."""
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(code=2)


def say(line: str, warning: bool) -> None:
    """A line for the user of a command that runs without Prefect: warnings always (as
    ``warning: ...`` on stderr), progress only with --verbose."""
    if warning:
        typer.secho(f"warning: {line}", fg="yellow", err=True)
    elif VERBOSE["on"]:
        typer.echo(line, err=True)


def input_errors() -> tuple[type[Exception], ...]:
    """The errors of bad arguments, inputs or outputs; all load in about a second."""
    from features.contracts import InputError
    from models.reasons import ReasonMapError
    from pipelines.catalog import OutputBusy, OutputNotWritable

    return (
        InputError,
        ReasonMapError,
        OutputBusy,
        OutputNotWritable,
        LookupError,
        ValueError,
        FileNotFoundError,
    )


def expected_errors() -> tuple[type[Exception], ...]:
    """Every error the CLI explains in one line (these imports load the flows' stack)."""
    from models.playbook import PlaybookError
    from models.scoring import FeatureMismatchError
    from pipelines.database import DatabaseAccessError, DatabaseUnavailable
    from pipelines.tracking import TrackingUnavailable

    return (
        DatabaseUnavailable,
        DatabaseAccessError,
        TrackingUnavailable,
        PlaybookError,
        FeatureMismatchError,
        *input_errors(),
    )


class _WarningsOnlyOnConsole(logging.Filter):
    """Without --verbose the terminal gets Prefect's warnings and nothing else.

    Progress goes to the run log; a failure is the CLI's one ``error:`` line, so Prefect's
    ERROR lines (and the INFO line saying the run failed) would only repeat it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return VERBOSE["on"] or logging.WARNING <= record.levelno < logging.ERROR


class _RunLog(logging.FileHandler):
    """The run log's handler (one at a time: the CLI may run several commands in-process)."""


class _Progress(logging.Handler):
    """Long stages' progress (models.progress) on stderr, when someone is watching: on a
    terminal, or with --verbose. Off a terminal stderr stays for the one error line.

    The stream is looked up at each line, not kept: whoever runs the CLI in-process may
    swap stderr between commands."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr
        if VERBOSE["on"] or stream.isatty():
            stream.write(record.getMessage() + "\n")
            stream.flush()


class _Summaries(logging.Handler):
    """Each stage's summary line into the run log (no line-every-5-s in a log file)."""

    def __init__(self, run_log: logging.Handler) -> None:
        super().__init__()
        self.run_log = run_log

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "final", False):
            self.run_log.handle(record)


def route_progress(run_log: logging.Handler | None) -> None:
    """``churn.progress`` -> stderr (see :class:`_Progress`), and summaries -> the run log."""
    progress = logging.getLogger("churn.progress")
    for old in [h for h in progress.handlers if isinstance(h, _Progress | _Summaries)]:
        progress.removeHandler(old)
    progress.addHandler(_Progress())
    if run_log is not None:
        progress.addHandler(_Summaries(run_log))
    progress.setLevel(logging.INFO)
    progress.propagate = False  # said once: not again through Prefect's console handler


class _NoTracebackForExpected(logging.Filter):
    """Bad input or an unreachable server is one clear line, not a traceback wall.

    Prefect logs every failed task with its traceback; for the errors this CLI explains
    itself (see expected_errors) the traceback helps nobody, so it is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], expected_errors()):
            record.exc_info, record.exc_text = None, None
        return True


def route_logs(data_dir: Path | None) -> Path | None:
    """Prefect's logs -> DATA_DIR/logs/churn.log; the console keeps warnings (all: --verbose).

    Returns:
        the log file, or None if it cannot be opened (the console then shows everything).
    """
    import prefect  # noqa: F401  (sets up Prefect's logging, which this adjusts)
    from prefect.logging.formatters import PrefectFormatter
    from prefect.logging.handlers import PrefectConsoleHandler

    runs = logging.getLogger("prefect")
    for old in [h for h in runs.handlers if isinstance(h, _RunLog)]:
        runs.removeHandler(old)
        old.close()
    path = Path(data_dir or "data") / RUN_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _RunLog(path, encoding="utf-8")
    except OSError:
        path, quiet = None, False
        route_progress(None)
    else:
        route_progress(handler)
        handler.setFormatter(
            PrefectFormatter(
                "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s",
                flow_run_fmt="%(asctime)s | %(levelname)-7s | Flow run %(flow_run_name)r - "
                "%(message)s",
                task_run_fmt="%(asctime)s | %(levelname)-7s | Task run %(task_run_name)r - "
                "%(message)s",
            )
        )
        runs.addHandler(handler)
        quiet = True
    for console in logging.getLogger().handlers:
        if isinstance(console, PrefectConsoleHandler):
            for old in [f for f in console.filters if isinstance(f, _WarningsOnlyOnConsole)]:
                console.removeFilter(old)
            if quiet:
                console.addFilter(_WarningsOnlyOnConsole())
    return path


def drop_expected_tracebacks() -> None:
    """Attach :class:`_NoTracebackForExpected` to every root handler (once each)."""
    import prefect  # noqa: F401  (sets up Prefect's console handler, which we filter)

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NoTracebackForExpected) for f in handler.filters):
            handler.addFilter(_NoTracebackForExpected())


def check_inputs(tables: dict[str, Path | None], **dates: str | None) -> None:
    """Input files and dates, before any heavy import; exits 2 with one line if bad.

    With --db the tables are names in PostgreSQL, checked by the flow's pre-flight.
    """
    if not DATABASE["on"]:
        for path in tables.values():
            if path is not None and not Path(path).exists():
                # the flow's words (features.contracts.InputError), before pandas loads
                fail(FileNotFoundError(f"{path}: file not found"))
    try:
        from pipelines.preflight_inputs import check_date, check_input_files

        for option, value in dates.items():
            check_date(value, "--" + option.replace("_", "-"))
        if not DATABASE["on"]:
            check_input_files(tables)
    except input_errors() as exc:
        fail(exc)


def check_destinations(
    inputs: InputPaths | DatabaseInputs,
    out: Path,
    settings: ScoreSettings,
    *,
    serving: bool = False,
) -> None:
    """Pre-flight before the flow (and Prefect's server) starts: a bad destination or login
    fails in seconds.

    A server that does not answer is left to the flow, which retries it with backoff (a
    schedule only warns: the server may be back by the first run).
    """
    from pipelines.destinations import preflight  # not the flows: they load once it passed

    try:
        preflight(inputs, out, settings)
    except Exception as exc:
        from pipelines.database import DatabaseUnavailable

        if not isinstance(exc, DatabaseUnavailable):
            raise
        if serving:
            typer.secho(f"warning: {exc}; the runs will retry it", fg="yellow", err=True)


def flow_inputs(
    transactions: Path,
    interactions: Path | None,
    customers: Path | None,
    subscriptions: Path | None = None,
) -> InputPaths | DatabaseInputs:
    """File paths, or with --db the same options name PostgreSQL tables."""
    from pipelines.settings import DatabaseInputs, InputPaths

    drop_expected_tracebacks()
    if DATABASE["on"]:
        return DatabaseInputs(
            transactions=str(transactions),
            interactions=str(interactions) if interactions else None,
            customers=str(customers) if customers else None,
            subscriptions=str(subscriptions) if subscriptions else None,
        )
    return InputPaths(
        transactions=transactions,
        interactions=interactions,
        customers=customers,
        subscriptions=subscriptions,
    )
