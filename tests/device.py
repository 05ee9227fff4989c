"""The device the training and evaluation tests run on: the CPU (CI, and by default), or the one named by
STUDY_TEST_DEVICE, so that on a GPU machine `STUDY_TEST_DEVICE=cuda python -m pytest tests/train tests/evaluate`
runs the same tests through the CUDA paths (bf16 autocast, channels_last, GPU photometric augmentation)."""
import os

TEST_DEVICE = os.environ.get("STUDY_TEST_DEVICE", "cpu")


def device_kind() -> str:
    """What a result's protocol records as `device_kind` for TEST_DEVICE."""
    if TEST_DEVICE == "cpu":
        return "cpu"
    import torch

    return torch.cuda.get_device_name(torch.device(TEST_DEVICE))
