"""Fixtures of every test. Helpers shared across folders live in tests/image_trees.py (tests/ is on the path:
pyproject's pythonpath); each folder's own helpers in a uniquely named module beside its tests."""
import pytest
import torch

from device import make_cuda_deterministic, tf32_matmul_switch

make_cuda_deterministic()  # STUDY_TEST_DEVICE=cuda only: before any test initialises CUDA (tests/device.py)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run torch on one thread: the CPU kernels are deterministic and CI's 2 cores stay free for the
    launcher's worker processes."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tf32_switch():
    """torch's TF32 matmul switch (`device.tf32_matmul_switch`), restored after the test (monkeypatch cannot set it:
    torch's module-like object serves it through __getattr__)."""
    name = tf32_matmul_switch()[0]
    before = getattr(torch.backends.cuda.matmul, name)
    yield
    setattr(torch.backends.cuda.matmul, name, before)
