"""The notebooks in notebooks/ run end to end, headless, on a small business, and are
committed without outputs (they are the tutorial: they must open cleanly and work)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_quickstart", "02_model_and_reasons", "03_your_data", "04_cdnow"]
# small enough that all four run in about two minutes on 2 cores, large enough to train
CUSTOMERS = 600


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name):
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]
    assert book.metadata.kernelspec.name == "python3"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> str:
    """This interpreter (the venv's) registered as a kernel in a throw-away folder, so a
    fresh clone needs nothing but `make setup`, and no user kernel is used by mistake."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="churn-tests", prefix=str(prefix))
    spec = json.loads((prefix / "share/jupyter/kernels/churn-tests/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable  # the venv's interpreter, not a system one
    return str(prefix / "share" / "jupyter")


@pytest.fixture(scope="module")
def notebook_data(tmp_path_factory) -> Path:
    """One data folder for all four, as when a user runs them in order."""
    return tmp_path_factory.mktemp("notebook_data")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_without_error(name, kernel, notebook_data, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", kernel)
    monkeypatch.setenv("CHURN_NOTEBOOK_CUSTOMERS", str(CUSTOMERS))
    monkeypatch.setenv("CHURN_NOTEBOOK_DATA", str(notebook_data))
    # the kernel's own Prefect state (and server), apart from the tests' harness
    monkeypatch.setenv("PREFECT_HOME", str(notebook_data / ".prefect"))
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        book,
        kernel_name="churn-tests",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    ran = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in ran)
