"""A benchmark script run as `make benchmarks` runs it: from the repository root, in a process of its own."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench_lines(script: str, *args: str, timeout: float = 600) -> list[str]:
    """The stdout lines of `benchmarks/<script> <args>`; an AssertionError with its stderr's tail where it fails."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()
