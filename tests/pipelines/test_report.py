"""The retention report: pure rendering checks, then the real page in headless Chromium.

The browser tests need Debian's ``chromium`` (``.ci/install-system-deps`` installs it);
without it they fail, they do not skip. They talk to the browser through the Chrome
DevTools protocol over a loopback websocket, which reports what a person would see in
the console: uncaught exceptions, console errors, failed loads, and any request that
leaves the file (the report must open with no network).

Artifacts (gitignored): ``tests/artifacts/report.png`` (1400 x 3000, what opens first)
and ``tests/artifacts/report-full.png`` (the whole page).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from features.build import build_features, build_features_as_of
from features.kpis import retention_kpis, risk_kpis
from features.status import customer_status, due_back
from features.windows import as_cutoff
from models.explain import REASON_COLUMNS, contributions
from models.playbook import load_playbook
from models.reasons import REASONS, load_reason_map
from models.scoring import (
    LIST_COLUMNS,
    align_features,
    at_risk_list,
    score_customers,
    win_back_list,
)
from models.training import choose_cutoffs, fit_classifier, labelled_features, stack_cutoffs
from pipelines.catalog import write_atomic
from pipelines.report import REQUIRED_COLUMNS, render_report
from simulation.retail import simulate

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1400, 3000
IDS = ("summary", "kpis", "reason-mix", "top-customers", "drivers", "segments")
META = {
    "score_date": "",  # filled from the data
    "model_name": "churn",
    "model_version": "3",
    "generated_at": "2026-01-01 06:00 UTC",
    "business": "Demo shop",
    "horizon_days": "90",
}


# --- a realistic run, without MLflow or Prefect ---------------------------------------


@pytest.fixture(scope="module")
def run() -> dict:
    business = simulate(1500, seed=2)
    tx, ix, cu = business.transactions, business.interactions, business.customers
    cutoffs = choose_cutoffs(tx["timestamp"].min(), tx["timestamp"].max(), label_days=180)
    x_train, y_train = stack_cutoffs(tx, cutoffs.train, ix, cu, 90, 365)
    x_valid, y_valid = labelled_features(tx, cutoffs.validation, ix, cu, 90, 365)
    model = fit_classifier(x_train, y_train, x_valid, y_valid)

    score_date = as_cutoff(tx["timestamp"].max()) + pd.Timedelta(days=1)
    features = build_features(tx, score_date, ix, cu, 365)
    status = customer_status(features)
    status["due_date"] = due_back(features, status, score_date)
    lapsed = status["status"].eq("lapsed")
    scored = score_customers(
        model,
        features,
        load_reason_map(),
        load_playbook(),
        90,
        "3",
        pd.Timestamp("2026-01-01 06:00", tz="UTC"),
        status=status,
        due_features=build_features_as_of(tx, status.loc[lapsed, "due_date"], ix, cu),
        min_win_back_value=10.0,
    )
    scored.insert(1, "score_date", score_date)
    listed = at_risk_list(scored, 0.5)
    win_back = win_back_list(scored)
    top = listed["customer_id"].head(20).tolist()
    drivers = contributions(model.get_booster(), align_features(features, model).loc[top])
    kpis = retention_kpis(tx, score_date) | risk_kpis(scored, listed)
    meta = META | {"score_date": str(score_date.date())}
    html = render_report(scored, listed, kpis, drivers, meta, features=features, win_back=win_back)
    assert not win_back.empty
    return {"scored": scored, "listed": listed, "drivers": drivers, "kpis": kpis, "html": html}


@pytest.fixture(scope="module")
def report_file(run, tmp_path_factory) -> Path:
    return write_atomic({"report": run["html"]}, tmp_path_factory.mktemp("report"))["report"]


# --- Chromium -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    # A missing browser is a broken test setup, not a reason to skip the check.
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} not found: run .ci/install-system-deps (installs Debian's chromium)"
    )
    return CHROMIUM


class DevTools:
    """A minimal Chrome DevTools protocol client over the browser's websocket."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, proxy=None, max_size=None, ping_interval=None, open_timeout=30)
        self.events: list[dict] = []
        self._id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        message: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + 60
        while True:
            data = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if data.get("id") == self._id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data["result"]
            self.events.append(data)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            self.events.append(data)
            if data.get("method") == method:
                return data

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def close(self) -> None:
        self.ws.close()


def problems(events: list[dict]) -> dict[str, list[str]]:
    """What the page reported: errors a person would see in the console, and requests
    that leave the file."""
    errors, external = [], []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = params["args"]
            errors.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
        elif method == "Network.loadingFailed":
            errors.append(f"load failed: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url.split(":", 1)[0] not in ("file", "data", "about"):
                external.append(url)
    return {"errors": errors, "external": external}


def open_in_browser(chromium: str, page: Path, profile: Path, expression: str) -> dict:
    """Load ``page`` at 1400 px wide; return its problems, the evaluated ``expression``
    (JSON-able) and a full-page PNG."""
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a reused profile keeps the last run's port
    log = (profile / "chromium.log").open("wb")
    browser = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            assert browser.poll() is None, f"chromium exited early: {(profile / 'chromium.log')}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        tools = DevTools(f"ws://127.0.0.1:{port}{path}")
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.call(f"{domain}.enable", session=session)
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            tools.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
            tools.wait_for("Page.loadEventFired")
            tools.drain(0.5)  # late console messages and failed loads
            value = tools.call(
                "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
            )["result"].get("value")
            size = tools.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = tools.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1},
                },
                session,
            )["data"]
            page_events = [e for e in tools.events if e.get("sessionId") == session]
            return {"value": value, "png": base64.b64decode(shot), **problems(page_events)}
        finally:
            tools.close()
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=20)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        log.close()


PAGE_FACTS = """
(() => {
  const q = (s) => document.querySelector(s);
  const box = (s) => { const r = q(s).getBoundingClientRect(); return {top: r.top, h: r.height}; };
  const firstRow = q('#top-customers tbody tr');
  const reasonRows = [...document.querySelectorAll('#reason-mix tbody tr')].map(
    (tr) => [...tr.cells].map((c) => c.textContent.trim()));
  return {
    ids: ['summary', 'kpis', 'reason-mix', 'top-customers', 'drivers', 'segments']
      .filter((id) => document.getElementById(id) !== null),
    summary: q('#summary').innerText,
    firstRowId: firstRow.querySelector('.cid').textContent,
    listRows: document.querySelectorAll('#top-customers tbody tr').length,
    cards: [...document.querySelectorAll('#drivers .card')].map((c) => c.dataset.customer),
    barsPerCard: [...document.querySelectorAll('#drivers .card svg')].map(
      (s) => s.querySelectorAll('rect').length),
    tiles: document.querySelectorAll('#kpis .tile').length,
    reasonRows: reasonRows,
    segmentRows: document.querySelectorAll('#segments tbody tr').length,
    scrollWidth: document.documentElement.scrollWidth,
    // boxes sticking out of the page column, or content overflowing its box
    overflowing: [...document.querySelectorAll('main > section, main > div, .two-col > section')]
      .filter((el) => el.getBoundingClientRect().right > q('#kpis').getBoundingClientRect().right
        || el.scrollWidth > el.clientWidth + 1)
      .map((el) => el.id || el.className),
    emptySvgs: [...document.querySelectorAll('svg')].filter(
      (s) => s.getBoundingClientRect().width < 50 || s.getBoundingClientRect().height < 20).length,
    kpis: box('#kpis'), list: box('#top-customers'), summaryBox: box('#summary'),
  };
})()
"""


def test_report_loads_cleanly_in_chromium_with_its_key_elements(
    chromium, run, report_file, tmp_path
):
    seen = open_in_browser(chromium, report_file, tmp_path / "profile", PAGE_FACTS)
    publish(seen["png"], "report-full.png")

    assert seen["errors"] == []
    assert seen["external"] == []
    facts = seen["value"]
    listed = run["listed"]
    top_id = listed["customer_id"].iloc[0]
    assert facts["ids"] == list(IDS)
    assert facts["firstRowId"] == top_id
    assert f"Start with {top_id}" in facts["summary"]
    assert f"Call these {min(25, len(listed))} customers first" in facts["summary"]
    assert facts["listRows"] == min(50, len(listed))
    # a driver chart for each of the top 20, in call order, with at most 6 bars each
    assert facts["cards"] == listed["customer_id"].head(20).tolist()
    assert all(1 <= n <= 6 for n in facts["barsPerCard"])
    assert facts["tiles"] == 8
    # the reason table shows the list's real counts, one row per documented reason
    counts = listed["top_reason"].value_counts()
    labels = {r: r.replace("_", " ").capitalize() for r in REASONS}
    shown = {row[0]: int(row[1].replace(",", "")) for row in facts["reasonRows"]}
    assert shown == {labels[r]: int(counts.get(r, 0)) for r in REASONS}
    assert facts["segmentRows"] == run["scored"]["segment"].nunique() + 1  # + the total
    # layout: nothing wider than the window, no collapsed chart, and the call list starts
    # inside the first screen-and-a-bit so the screenshot shows who to call first
    assert facts["scrollWidth"] <= WIDTH
    assert facts["overflowing"] == []
    assert facts["emptySvgs"] == 0
    assert facts["summaryBox"]["top"] < 200
    assert facts["list"]["top"] < HEIGHT - 500


def publish(png: Path | bytes, name: str) -> Path:
    """Copy a screenshot into tests/artifacts atomically (other runs may share the folder)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    final = ARTIFACTS / name
    temp = final.with_name(f".{name}.{os.getpid()}.tmp")
    temp.write_bytes(png if isinstance(png, bytes) else png.read_bytes())
    os.replace(temp, final)
    return final


def test_screenshot_of_the_report(chromium, report_file, tmp_path):
    # taken in this test's own folder, checked there, then published as the artifact
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            report_file.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # the page has no script: any console line at all would be a surprise
    lines = done.stderr.splitlines()
    console = [line for line in lines if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert shot.exists() and shot.stat().st_size > 50_000
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        pixels = np.asarray(image.convert("RGB").resize((140, 300)))
    # not a blank or single-colour page: many colours, and ink spread down the page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    rows_with_ink = (pixels.min(axis=2) < 100).any(axis=1)
    assert rows_with_ink[:100].any() and rows_with_ink[200:].any()
    assert publish(shot, "report.png").stat().st_size == shot.stat().st_size


def test_browser_check_catches_errors_and_network_requests(chromium, tmp_path):
    # The control for the clean-page test: the same check must see a thrown error, a
    # console error and a request that leaves the file.
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>broken</p>"
        '<img src="https://example.invalid/logo.png">'
        '<script>console.error("console says no"); throw new Error("boom")</script>'
        "</body></html>"
    )
    seen = open_in_browser(chromium, page, tmp_path / "profile", "document.title")
    assert any("boom" in e for e in seen["errors"])
    assert any("console says no" in e for e in seen["errors"])
    assert seen["external"] == ["https://example.invalid/logo.png"]


# --- rendering without a browser ------------------------------------------------------


def tiny_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four scored customers in LIST_COLUMNS; C0-C2 are on the list, C3 is left alone."""
    scored = pd.DataFrame(
        {
            "customer_id": ["C0", "C1", "C2", "C3"],
            "score_date": pd.Timestamp("2025-06-01"),
            "list": ["at_risk", "at_risk", "at_risk", ""],
            "group": ["contact", "holdout", "contact", ""],
            "campaign": ["2025-W22", "2025-W22", "2025-W22", ""],
            "risk_rank": pd.array([1, 2, 3, None], dtype="Int64"),
            "status": "active",
            "days_since_last_purchase": [40.0, 20.0, 35.0, 5.0],
            "expected_gap_days": 30.0,
            "plausible_gap_days": 58.0,
            "churn_probability": [0.9, 0.95, 0.6, 0.1],
            "expected_value": [100.0, 200.0 / 3, 50.0, 400.0],
            "value_at_risk": [90.0, 190.0 / 3, 30.0, 40.0],
            "segment": ["vip", "regular", "occasional", "fan"],
            "top_reason": ["poor_interaction", "competitor_offer", "unidentified", "relocation"],
            "reason_confidence": 0.5,
            "reason_source": "drivers",
            "drivers_reason": [
                "poor_interaction",
                "competitor_offer",
                "unidentified",
                "relocation",
            ],
            "reason_as_of": pd.NaT,
            **{c: 0.1 for c in REASON_COLUMNS},
            "top_drivers": "no purchase for 80 days; 3 support tickets in 90 days",
            "recommended_action": "Call them",
            "action_rule": ["grievance", "competitor_offer", "unidentified", "leave_alone"],
            "model_version": "1",
            "scored_at": pd.Timestamp("2025-06-01 06:00", tz="UTC"),
        }
    )
    assert set(LIST_COLUMNS) <= set(scored.columns)
    return scored, scored.head(3)


KPIS = {
    "period_days": 90.0,
    "retention_rate": 0.8,
    "churn_rate": 0.25,
    "repeat_purchase_rate": 0.5,
    "new_customer_revenue_share": 0.2,
    "new_revenue_warning": 0.0,
    "revenue": 1000.0,
    "customers_scored": 4.0,
    "customers_at_risk": 3.0,
    "revenue_at_risk": 150.0,
    "leave_alone_count": 1.0,
    "grievance_count": 1.0,
}
DRIVERS = pd.DataFrame(
    {
        "unresolved_90d": [0.9, 0.1],
        "days_since_last_purchase": [0.5, 1.2],
        "tenure_days": [-0.3, 0.0],
    },
    index=pd.Index(["C0", "C1"], name="customer_id"),
)


def test_data_is_escaped_and_nothing_is_fetched():
    scored, listed = tiny_frames()
    evil = "<script>alert('x')</script>"
    scored.loc[0, "customer_id"] = evil
    scored.loc[0, "top_drivers"] = "<b>bold</b> & co"
    listed = scored.head(3)
    drivers = DRIVERS.rename(index={"C0": evil})
    html = render_report(scored, listed, KPIS, drivers, META | {"business": "<i>Shop</i>"})
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    assert "&lt;i&gt;Shop&lt;/i&gt;" in html
    # self-contained: no scripts, stylesheets, images or URLs of any kind
    for fetch in ("<link", "<img", "src=", "href=", "url(", "http:", "https:", "@import"):
        assert fetch not in html


def test_new_revenue_warning_shows_only_above_the_threshold():
    scored, listed = tiny_frames()
    quiet = render_report(scored, listed, KPIS, DRIVERS, META)
    warned = render_report(
        scored,
        listed,
        KPIS | {"new_customer_revenue_share": 0.75, "new_revenue_warning": 1.0},
        DRIVERS,
        META,
    )
    assert 'class="tile warn"' not in quiet
    assert 'class="tile warn"' in warned
    assert "Warning: over 70% of revenue comes from new customers" in warned


def test_summary_names_the_first_call_and_the_grievance_rule():
    scored, listed = tiny_frames()
    html = render_report(scored, listed, KPIS, DRIVERS, META, call_first=2)
    # C0 and C1: 90 + 63.33 at risk, one grievance (C0)
    assert "Call these 2 customers first" in html
    assert "€153" in html
    assert "<strong>1 of them</strong> have an open grievance" in html
    assert 'Start with</strong> <strong class="cid">C0</strong>' in html


def test_customers_kept_off_the_list_are_counted_per_segment():
    scored, listed = tiny_frames()
    scored.loc[3, ["segment", "action_rule"]] = ["seasonal", "seasonal_gap"]
    html = render_report(scored, listed, KPIS | {"seasonal_gap_count": 1.0}, DRIVERS, META)
    # seasonal row: 1 customer, 0 listed, 0% listed, no value at risk, 0 left alone, 1 off-season
    assert (
        "<tr><td>Seasonal</td><td class='num'>1</td><td class='num'>0</td>"
        "<td class='num'>0%</td><td class='num'>€0</td><td class='num'>0</td>"
        "<td class='num'>1</td></tr>"
    ) in html
    assert "<strong>1</strong> off-season" in html
    assert "1 seasonal customers are quiet only because it is their off-season" in html


def test_missing_kpis_and_empty_list_still_render_every_section():
    scored, _ = tiny_frames()
    empty = scored.iloc[0:0]
    html = render_report(scored, empty, {"churn_rate": math.nan}, DRIVERS.iloc[0:0], {})
    for section in IDS:
        assert f'id="{section}"' in html
    assert "Nobody is on the call list today" in html
    assert "n/a" in html


def test_refuses_frames_without_the_list_columns():
    scored, listed = tiny_frames()
    with pytest.raises(ValueError, match="top_reason"):
        render_report(scored.drop(columns="top_reason"), listed, KPIS, DRIVERS, META)
    assert "top_reason" in REQUIRED_COLUMNS


def test_report_is_written_through_the_catalog_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    scored, listed = tiny_frames()
    html = render_report(scored, listed, KPIS, DRIVERS, META)
    write_atomic({"report": "<p>old</p>"}, out)
    path = write_atomic({"report": html}, out)["report"]
    assert path == out / "report.html"
    assert path.read_text(encoding="utf-8") == html
    umask = os.umask(0)
    os.umask(umask)
    # an ordinary file for staff to open, not a private (0600) temp file
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

    def refuse() -> None:
        raise RuntimeError("the list table refused the night")

    # a failed write leaves the previous report and no temp files behind
    with pytest.raises(RuntimeError, match="refused"):
        write_atomic({"report": "<p>new</p>"}, out, before_replace=refuse)
    assert path.read_text(encoding="utf-8") == html
    assert os.listdir(out) == ["report.html"]


def test_the_campaign_section_says_plainly_when_there_is_not_enough_data_yet():
    from models.campaign import evaluate_campaigns

    scored, listed = tiny_frames()
    rows = [("at_risk", "grievance", "contact", 100.0, i < 30) for i in range(40)] + [
        ("at_risk", "grievance", "holdout", 100.0, i < 20) for i in range(40)
    ]
    outcomes = pd.DataFrame(
        rows, columns=["list", "action_rule", "group", "expected_value", "retained"]
    )
    few = render_report(
        scored, listed, KPIS, DRIVERS, META, campaign=evaluate_campaigns(outcomes.head(45))
    )
    assert "Did the calls help?" in few
    assert "Not enough data yet</strong>: 40 contacted and 5 held-out listings" in few
    enough = render_report(
        scored, listed, KPIS, DRIVERS, META, campaign=evaluate_campaigns(outcomes)
    )
    assert "Not enough data yet" not in enough
    # 75% kept when called against 50% held out: +25 points, interval +4.5 to +45.5
    assert "+25.0 pts (+4.5 to +45.5)" in enough
    assert "Did the calls help?" not in render_report(scored, listed, KPIS, DRIVERS, META)
