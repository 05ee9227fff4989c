"""The evaluation's DataLoader (forward_rows) forks its workers with this process's OpenCV on one thread: a worker
forked after OpenCV's thread pool ran here (a fine-tune trained in this process without workers, its photometric
ops at >= ~320 px) hung for ever in worker_init's cv2.setNumThreads(1)."""
from __future__ import annotations

from killable import run_script

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
    script = tmp_path / "forward_after_opencv.py"
    script.write_text(FORWARD_AFTER_OPENCV)
    out = run_script(script, str(encoder_file()), timeout=180,
                     hung="forward_rows' workers hung after OpenCV had run threaded in the parent")
    assert "rows 20 opencv threads 1" in out, out
