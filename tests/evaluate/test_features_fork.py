"""The evaluation's DataLoader (forward_rows) forks its workers with this process's OpenCV on one thread: a worker
forked after OpenCV's thread pool ran here (a fine-tune trained in this process without workers, its photometric
ops at >= ~320 px) hung for ever in worker_init's cv2.setNumThreads(1)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORWARD_AFTER_OPENCV = """
import sys
import cv2, numpy as np, torch
from study.evaluate.features import LayerFeatures, forward_rows
from study.manifests import load_manifest
from study.train.augment import build_augment
from study.train.backbones import load_encoder

test = load_manifest("evtest")
model = LayerFeatures(load_encoder(sys.argv[1]), "pooled")
aug = build_augment({"preset": "eval", "image_size": 16})
big = np.random.rand(1000, 1000, 3).astype(np.float32)
for _ in range(4):  # the hang came at about one fork in three
    cv2.cvtColor(big, cv2.COLOR_RGB2HSV)  # OpenCV's pool runs here
    out, _, _ = forward_rows(model, test, test.all(), aug, 8, torch.device("cpu"), num_workers=2)
print("rows", len(out), "opencv threads", cv2.getNumThreads())
"""


def test_forward_rows_workers_fork_with_opencv_on_one_thread(manifests, encoder_file, tmp_path):
    """In a process group of its own, killed whole on a hang."""
    script = tmp_path / "forward_after_opencv.py"
    script.write_text(FORWARD_AFTER_OPENCV)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(script), str(encoder_file())], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("forward_rows' workers hung after OpenCV had run threaded in the parent")
    assert proc.returncode == 0 and "rows 20 opencv threads 1" in out, out
