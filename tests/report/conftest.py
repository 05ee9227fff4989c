"""Fixtures of the report tests (their records and plans: report_records.py)."""
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")
