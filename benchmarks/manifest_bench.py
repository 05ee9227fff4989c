"""Manifest build speed on an iNat21-sized `train.json` (2.7M images, 10,000 categories with taxonomy).

Generates the JSON (COCO-style, every field of the real schema), then, each in a fresh process:
  - a bare `json.load` of the file (the reference), and
  - `study manifest build --dataset inat21` with the paper's nested sizes and labeled sizes: index, rank, write.
Prints wall time and peak memory of both. Target: build <= 60 s and <= 4 GB peak on 2 cores.
`--quick` runs a tenth of the size.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = "50k,125k,250k,500k,1M"
LABELED = "1k,10k,50k,100k,250k"


def _class_dir(c: int) -> str:
    return f"{c:05d}_Animalia_P{c % 13}_C{c % 51}_O{c % 273}_F{c % 1103}_G{c % 4884}_s{c}"


def generate(path: Path, num_images: int, num_classes: int) -> None:
    """train.json beside the class folders its file names point into, each image an empty file: the reader lists
    every folder (a listed image that is not there is refused)."""
    import random

    for c in range(num_classes):
        (path.parent / "train" / _class_dir(c)).mkdir(parents=True, exist_ok=True)
    rnd = random.Random(0)
    with open(path, "w") as f:
        f.write('{"info": {"year": 2021, "version": "bench"}, "images": [')
        for i in range(num_images):
            c = i % num_classes
            name = f"train/{_class_dir(c)}/{rnd.getrandbits(128):032x}.jpg"
            os.close(os.open(path.parent / name, os.O_CREAT | os.O_WRONLY, 0o644))
            f.write(("," if i else "") + json.dumps({
                "id": i, "width": 500, "height": 375,
                "file_name": name,
                "license": 1, "rights_holder": "someone", "date": "2010-07-14 20:19:00+00:00",
                "latitude": 43.1, "longitude": -71.5, "location_uncertainty": 77,
            }))
        f.write('], "categories": [')
        for c in range(num_classes):
            f.write(("," if c else "") + json.dumps({
                "id": c, "name": f"Genus{c % 4884} species{c}", "common_name": f"thing {c}",
                "supercategory": ["Plants", "Insects", "Birds", "Fungi"][c % 4], "kingdom": f"K{c % 3}",
                "phylum": f"P{c % 13}", "class": f"C{c % 51}", "order": f"O{c % 273}", "family": f"F{c % 1103}",
                "genus": f"G{c % 4884}", "specific_epithet": f"species{c}",
                "image_dir_name": _class_dir(c),
            }))
        f.write('], "annotations": [')
        order = list(range(num_images))
        rnd.shuffle(order)  # annotations are joined on image_id, never by position
        for k, i in enumerate(order):
            f.write(("," if k else "") + f'{{"id": {k}, "image_id": {i}, "category_id": {i % num_classes}}}')
        f.write('], "licenses": [{"id": 1, "name": "CC BY", "url": ""}]}')


def child_json_load(path: str) -> None:
    t = time.perf_counter()
    with open(path) as f:
        doc = json.load(f)
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "images": len(doc["images"]), "peak_gb": peak_gb()}))


def child_build(root: str, sizes: str, labeled: str) -> None:
    from study.manifests.build import BuildConfig, build_manifest
    from study.manifests.sizes import parse_sizes

    t = time.perf_counter()
    meta, _ = build_manifest(BuildConfig("inat21", Path(root), "train", "bench_inat21_train",
                                         sizes=parse_sizes(sizes), labeled_sizes=parse_sizes(labeled)))
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "images": meta["num_images"], "peak_gb": peak_gb()}))


def peak_gb() -> float:
    """The process's peak resident memory in GB (10^9 bytes, as the target's 4 GB); ru_maxrss is in KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def run_child(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the size")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        if a.child[0] == "json":
            child_json_load(a.child[1])
        else:
            child_build(*a.child[1:])
        return
    num_images, num_classes = (270_000, 1_000) if a.quick else (2_700_000, 10_000)
    sizes, labeled = (("5k,12500,25k,50k,100k", "1k,10k,25k") if a.quick else (SIZES, LABELED))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "inat21"
        root.mkdir()
        t = time.perf_counter()
        generate(root / "train.json", num_images, num_classes)
        size_mb = (root / "train.json").stat().st_size / 2**20
        print(f"generated train.json: {num_images} images, {num_classes} categories, {size_mb:.0f} MB "
              f"in {time.perf_counter() - t:.1f} s")
        env = dict(os.environ, STUDY_MANIFESTS=str(Path(tmp) / "manifests"))
        ref = run_child(["--child", "json", str(root / "train.json")], env)
        build = run_child(["--child", "build", str(root), sizes, labeled], env)
    print(f"bare json.load:             {ref['seconds']:6.1f} s   peak {ref['peak_gb']:.2f} GB")
    print(f"manifest build (index + nested {sizes} + labeled {labeled} + write):")
    print(f"                            {build['seconds']:6.1f} s   peak {build['peak_gb']:.2f} GB   "
          f"({build['seconds'] / ref['seconds']:.2f} x json.load)")
    if a.quick:  # a tenth of the images: the fixed start-up cost does not shrink with them, so no verdict
        print("target <= 60 s and <= 4 GB at full size: not judged (--quick ran a tenth of the size)")
        return
    ok = build["seconds"] <= 60 and build["peak_gb"] <= 4
    print(f"target <= 60 s and <= 4 GB at full size: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
