"""Tiny copies of the real on-disk layouts, with real image files, for the reader tests."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from idx_files import write_idx


def write_image(path: Path, value: int = 0, size: tuple[int, int] = (12, 10), fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    fmt = fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    Image.fromarray(arr).save(path, format=fmt)
    return path


def make_imagefolder(root: Path, classes: dict[str, int], order_seed: int | None = None, ext: str = ".png") -> Path:
    """`root/<class>/<i><ext>`; files created in a shuffled order when `order_seed` is given."""
    files = [(c, i) for c, n in classes.items() for i in range(n)]
    if order_seed is not None:
        random.Random(order_seed).shuffle(files)
    for c, i in files:
        write_image(root / c / f"img{i:03d}{ext}", value=i)
    return root


WNIDS = ["n01440764", "n01443537", "n01484850"]
# ILSVRC2012_ID order differs from sorted-wnid order on purpose (the classic trap): ID 1 -> n01484850, ...
ILSVRC_IDS = {1: "n01484850", 2: "n01440764", 3: "n01443537"}


def write_meta_mat(path: Path, id_to_wnid: dict[int, str], extra_parent: bool = True) -> None:
    from scipy.io import savemat

    rows = [(i, w, f"words {w}", "gloss", 0, np.zeros((0,), dtype=np.uint8), 0, 10) for i, w in id_to_wnid.items()]
    if extra_parent:  # a non-leaf synset, as the real meta.mat has 860 of them
        rows.append((1001, "n00001740", "entity", "gloss", 3, np.array([1, 2, 3], dtype=np.uint8), 5, 0))
    dtype = [("ILSVRC2012_ID", object), ("WNID", object), ("words", object), ("gloss", object),
             ("num_children", object), ("children", object), ("wordnet_height", object), ("num_train_images", object)]
    arr = np.empty((len(rows), 1), dtype=dtype)
    for k, r in enumerate(rows):
        arr[k, 0] = r
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": arr})


def make_imagenet_official(root: Path, per_class: int = 3, val_labels: list[str] | None = None) -> Path:
    for w in WNIDS:
        for i in range(per_class):
            write_image(root / "train" / w / f"{w}_{i + 10}.JPEG", value=i)
    val_labels = val_labels or ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    wnid_to_id = {w: i for i, w in ILSVRC_IDS.items()}
    for k, _ in enumerate(val_labels, 1):
        write_image(root / "val" / f"ILSVRC2012_val_{k:08d}.JPEG", value=k)
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{wnid_to_id[w]}\n" for w in val_labels))
    write_meta_mat(devkit / "meta.mat", ILSVRC_IDS)
    return root


def make_imagenet_kaggle(root: Path, per_class: int = 2) -> Path:
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    for w in WNIDS:
        for i in range(per_class):
            write_image(data / "train" / w / f"{w}_{i}.JPEG", value=i)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} words of {w}, more words\n" for w in WNIDS))
    val = {"ILSVRC2012_val_00000002": "n01484850", "ILSVRC2012_val_00000001": "n01440764",
           "ILSVRC2012_val_00000003": "n01443537"}
    lines = ["ImageId,PredictionString"] + [f"{k},{w} 1 2 30 40 {w} 5 6 7 8" for k, w in val.items()]
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    for k in val:
        write_image(data / "val" / f"{k}.JPEG")
    return root


INAT_CATEGORIES = [
    # id, kingdom, phylum, class, order, family, genus, epithet, supercategory
    (0, "Animalia", "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae", "Lumbricus", "terrestris", "Animalia"),
    (1, "Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax", "Birds"),
    (2, "Plantae", "Tracheophyta", "Magnoliopsida", "Rosales", "Rosaceae", "Rosa", "canina", "Plants"),
]


def inat_dir(c: tuple) -> str:
    return f"{c[0]:05d}_" + "_".join(c[1:8])


def make_inat21(root: Path, split: str = "train", per_class: int = 3, seed: int = 0) -> dict:
    rnd = random.Random(seed)
    images, annotations = [], []
    image_id = 100
    for c in INAT_CATEGORIES:
        for i in range(per_class):
            name = f"{split}/{inat_dir(c)}/{rnd.getrandbits(64):016x}.jpg"
            write_image(root / name, value=image_id)
            images.append({"id": image_id, "width": 12, "height": 10, "file_name": name, "license": 1,
                           "rights_holder": "x", "date": "2010-07-14 20:19:00+00:00", "latitude": float("nan"),
                           "longitude": 1.0, "location_uncertainty": 5})
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": c[0]})
            image_id += 1
    rnd.shuffle(annotations)  # joined on image_id, never by position
    categories = [{"id": c[0], "name": f"{c[6]} {c[7]}", "common_name": "", "supercategory": c[8],
                   "kingdom": c[1], "phylum": c[2], "class": c[3], "order": c[4], "family": c[5], "genus": c[6],
                   "specific_epithet": c[7], "image_dir_name": inat_dir(c)} for c in INAT_CATEGORIES]
    doc = {"info": {"year": 2021}, "images": images, "categories": categories, "annotations": annotations,
           "licenses": [{"id": 1, "name": "CC", "url": ""}]}
    (root / f"{split}.json").write_text(json.dumps(doc, indent=1))
    return doc


PLACES_CLASSES = ["/a/airfield", "/b/bus_station/indoor", "/b/bus_station/outdoor"]


def make_places365(root: Path, image_dir: str = "data_256", per_class: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(PLACES_CLASSES)))
    lines = []
    for i, c in enumerate(PLACES_CLASSES):
        for k in range(per_class):
            rel = f"{c}/{k + 1:08d}.jpg"
            write_image(root / image_dir / rel.lstrip("/"), value=k, size=(16, 16))
            lines.append(f"{rel} {i}")
    (root / "places365_train_standard.txt").write_text("\n".join(reversed(lines)) + "\n")
    val = [(f"Places365_val_{k:08d}.jpg", k % 3) for k in range(1, 5)]
    (root / "places365_val.txt").write_text("".join(f"{n} {label}\n" for n, label in val))
    for n, _ in val:
        write_image(root / "val_256" / n)
    return root


def glc_patch(landcover_center: int, landcover_majority: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    patch = rng.integers(0, 256, (16, 16, 5), dtype=np.uint8)
    patch[:, :, 4] = landcover_majority
    patch[8, 8, 4] = landcover_center
    return patch


def make_glc20(root: Path) -> dict:
    """Two French and three US occurrences; US patches split in patches_us_NN parts."""
    root.mkdir(parents=True, exist_ok=True)
    occurrences = {
        "fr": [(10561234, 5, 2, 11, 11), (10567899, 7, 2, 11, 12)],  # id, species, ?, centre, majority
        "us": [(1234567, 5, 3, 21, 21), (7654301, 9, 3, 41, 42), (222207, 9, 3, 41, 41)],
    }
    for region, rows in occurrences.items():
        lines = ["id;lat;lon;species_id"] + [f"{i};43.1;-71.2;{s}" for i, s, *_ in rows]
        (root / f"occurrences_{region}_train.csv").write_text("\n".join(lines) + "\n")
        for i, _, _, centre, majority in rows:
            cd, ab = f"{i % 100:02d}", f"{(i // 100) % 100:02d}"
            if region == "fr":
                path = root / "patches_fr" / cd / ab / f"{i}.npy"
            else:
                path = root / "patches_us" / f"patches_us_{i % 100 // 5 + 1:02d}" / cd / ab / f"{i}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, glc_patch(centre, majority, seed=i))
            np.save(path.with_name(f"{i}_alti.npy"), np.zeros((16, 16), np.int16))
    (root / "occurrences_us_test.csv").write_text("id;lat;lon\n1234567;43.1;-71.2\n")
    return occurrences


def make_fashion_mnist(root: Path, n_train: int = 20, n_test: int = 10, suffix: str = ".gz") -> Path:
    """The four IDX files, named as Debian installs them (`suffix=""`: uncompressed, as Kaggle's copy)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{stem}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return root
