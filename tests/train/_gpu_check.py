# temporary: GPU smoke of pretrain with the test stand-ins (deleted after use)
import sys, types, time, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import torch
import train_helpers as h
try:
    from study.train.augment import AugmentConfig, build_augment  # noqa
    print("real augment")
except ImportError:
    sys.modules["study.train.augment"] = h.augment_standin()
    print("stand-in augment")
import study.train.loop as loop
from study.train import pretrain, StopRequested
tmp = Path(tempfile.mkdtemp())
m = h.TinyManifest("tiny", tmp / "img", h.write_images(tmp / "img", n=64), {"kind": "image", "seed": 0})
loop._load_manifest = lambda name: m
for method in ["simclr", "moco", "byol", "supervised"]:
    cfg = h.tiny_config(method=method, device="auto", precision="auto", num_workers=2, batch_size=16, steps=8)
    try:
        pretrain(cfg, tmp / f"r{method}", stop_at=4)
    except StopRequested:
        pass
    out = pretrain(cfg, tmp / f"r{method}")
    p = out["protocol"]
    print(method, out["metrics"], p["device_kind"], p["precision"], p["channels_last"], p["resumed_from_steps"])
