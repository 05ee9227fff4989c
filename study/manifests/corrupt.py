"""`study manifest corrupt`: a variant of a manifest whose images are read through a corruption.

It has its base's rows (same table, same table hash) and records the corruption spec and the base's name and content
hash; `ImageReader` applies the corruption to every image, keyed by the manifest seed and the image's path.
"""
from __future__ import annotations

from study.corruptions import parse_corruption
from study.errors import StudyError
from study.manifests.build import freeze
from study.manifests.manifest import load_intact
from study.manifests.store import check_name, check_writable


def corrupt_manifest(name: str, base: str, corruption: str):
    check_name(name)
    spec = parse_corruption(corruption, "--corruption")
    if spec.name == "none":  # the clean images: a variant of them would only stop the base's lazy JPEG decoding
        raise StudyError(f"corruption {corruption!r}: a grid with corruption none reads {base} itself; name a "
                         "corruption to make a variant")
    if name == base:  # the frozen-name refusal would advise deleting the base, which the variant is made from
        raise StudyError(f"manifest {name!r} is the base itself: a variant takes a name of its own, the one a grid "
                         f"looks up being {base}.{spec.slug}")
    check_writable(name)
    b = load_intact(base, "base")
    if b.meta.get("corruption"):
        raise StudyError(f"{base} is already corrupted ({b.meta['corruption']}); corrupt its clean base instead")
    meta = {k: v for k, v in b.meta.items() if k not in ("name", "table_hash", "content_hash", "schema_version")}
    meta["corruption"] = str(spec)
    meta["base"] = {"name": b.name, "content_hash": b.content_hash}
    return freeze(name, b.rows, meta)
