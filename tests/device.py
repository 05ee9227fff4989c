"""The device the training and evaluation tests run on: the CPU (CI, and by default), or the one named by
STUDY_TEST_DEVICE, so that on a GPU machine `STUDY_TEST_DEVICE=cuda python -m pytest tests/train tests/evaluate`
runs the same tests through the CUDA paths (bf16 autocast, channels_last, GPU photometric augmentation).

On CUDA the bit-exact resume assertions need deterministic kernels: tests/conftest.py calls
`make_cuda_deterministic()` when it is imported, before anything initialises CUDA."""
import os

TEST_DEVICE = os.environ.get("STUDY_TEST_DEVICE", "cpu")


def is_cuda(device: str = TEST_DEVICE) -> bool:
    return device.startswith("cuda")


def device_kind() -> str:
    """What a result's protocol records as `device_kind` for TEST_DEVICE."""
    if TEST_DEVICE == "cpu":
        return "cpu"
    import torch

    return torch.cuda.get_device_name(torch.device(TEST_DEVICE))


def expected_precision(device: str = TEST_DEVICE) -> str:
    """What `precision: auto` (tiny_config's) resolves to on `device`: bf16 autocast on CUDA, fp32 on the CPU."""
    return "bf16" if is_cuda(device) else "fp32"


def make_cuda_deterministic(device: str = TEST_DEVICE) -> bool:
    """On a CUDA test device: CUBLAS_WORKSPACE_CONFIG=:4096:8 (unless set; cuBLAS reads it when CUDA starts),
    deterministic algorithms only (an op without one raises), no cuDNN autotuning. Returns whether it did; the CPU
    is left as it is."""
    if not is_cuda(device):
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return True


def tf32_matmul_switch() -> tuple[str, object, object]:
    """(attribute of torch.backends.cuda.matmul, its TF32 value, its IEEE value): the switch study.train.tf32 sets,
    `fp32_precision` where torch has it (2.9 and later), else `allow_tf32`. Set without a GPU: a process flag."""
    import torch

    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return "fp32_precision", "tf32", "ieee"
    return "allow_tf32", True, False
