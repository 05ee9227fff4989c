"""tests/device.py: what STUDY_TEST_DEVICE=cuda changes for the training tests (deterministic kernels for the
bit-exact resume assertions, bf16 expected under `precision: auto`) and that the CPU is left as it was. No GPU is
needed: the settings are torch's global flags and an environment variable, read here without starting CUDA."""
import os

import pytest
import torch

from device import TEST_DEVICE, expected_precision, make_cuda_deterministic


@pytest.fixture
def torch_flags(monkeypatch):
    """Restore torch's determinism flags after the test (monkeypatch restores the environment)."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


def test_cuda_test_device_turns_on_deterministic_kernels(torch_flags):
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    assert make_cuda_deterministic("cuda:1") is True
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True


def test_cpu_test_device_changes_nothing(torch_flags):
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    assert make_cuda_deterministic("cpu") is False
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark is True


def test_a_workspace_config_already_set_is_kept(torch_flags, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    make_cuda_deterministic("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_expected_precision_follows_the_device():
    assert (expected_precision("cpu"), expected_precision("cuda"), expected_precision("cuda:0")) == \
        ("fp32", "bf16", "bf16")


def test_this_session_is_set_up_for_its_test_device():
    """conftest.py ran make_cuda_deterministic() at import: on CUDA the flags are on, on the CPU torch's defaults."""
    if TEST_DEVICE.startswith("cuda"):
        assert torch.are_deterministic_algorithms_enabled() and os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    else:
        assert not torch.are_deterministic_algorithms_enabled()
