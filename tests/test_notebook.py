"""The what-if notebook runs from top to bottom (nbclient), with a short Monte Carlo run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "whatif.ipynb"


def test_whatif_notebook_executes(monkeypatch):
    monkeypatch.setenv("FAULTLOCK_WHATIF_OPERATIONS", "500")   # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()    # raises CellExecutionError if any cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "predict:" in text and "simulate:" in text and "threads: MC best" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the latency figure is shown"
    assert os.environ["FAULTLOCK_WHATIF_OPERATIONS"] == "500"
