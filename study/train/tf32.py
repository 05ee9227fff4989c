"""torch's TF32 switches on CUDA: `tf32_in_use(device)` reads them (for a result record), `tf32_matmuls(device, on)`
sets cuBLAS's for a block. torch 2.9 added `fp32_precision` ("tf32" or "ieee") beside the older `allow_tf32`, and
refuses to read `allow_tf32` once the newer one says "tf32"; both functions work on either API."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def tf32_in_use(device: torch.device) -> dict[str, bool] | None:
    """Where float32 convolutions and matmuls run as TF32 on this CUDA device (torch's switches: cuDNN's is on by
    default, so a `precision: fp32` run convolves in TF32 on Ampere and later); None off CUDA."""
    if device.type != "cuda":
        return None
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    return {"convolutions": _tf32_switch(cudnn, getattr(cudnn, "conv", None)), "matmul": _tf32_switch(matmul, matmul)}


def _tf32_switch(legacy, newer) -> bool:
    """One of torch's TF32 switches: `legacy.allow_tf32`, or where torch (2.9 and later) refuses to read that because
    its newer API set `newer.fp32_precision`, that setting."""
    try:
        return bool(legacy.allow_tf32)
    except RuntimeError:
        return getattr(newer, "fp32_precision", None) == "tf32"


@contextlib.contextmanager
def tf32_matmuls(device: torch.device, on: bool) -> Iterator[None]:
    """Within: float32 matmuls on a CUDA `device` run as TF32 if and only if `on`, through cuBLAS's own switch
    (`torch.backends.cuda.matmul.fp32_precision`, "tf32" or "ieee", where torch has it: 2.9 and later, whose older
    `allow_tf32` refuses to be read once that is "tf32"; else `allow_tf32`), restored on leaving; off CUDA nothing
    changes."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    key, value = ("fp32_precision", "tf32" if on else "ieee") if hasattr(matmul, "fp32_precision") else (
        "allow_tf32", on)
    before = getattr(matmul, key)
    setattr(matmul, key, value)
    try:
        yield
    finally:
        setattr(matmul, key, before)
