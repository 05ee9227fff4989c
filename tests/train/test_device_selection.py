"""Which CUDA device a pretraining rank takes. No GPU here: the device counts are given to the pure function, and
for resolve_device torch.cuda.is_available / device_count / current_device are mocked (a torch.device is only a
name: building one initialises nothing)."""
import pytest
import torch

from study.errors import StudyError
from study.train import distributed
from study.train.device import cuda_index, resolve_device


def _no_current():
    raise AssertionError("several ranks must not fall back on the current device")


def test_every_task_sees_the_nodes_gpus_rank_r_takes_gpu_r():
    assert [cuda_index("cuda", 4, r, 4, _no_current) for r in range(4)] == [0, 1, 2, 3]


def test_one_gpu_bound_per_task_every_rank_takes_its_only_gpu():
    """A site that binds one GPU per task: each rank sees one device, index 0 (cuda:LOCAL_RANK would not exist)."""
    assert [cuda_index("cuda", 4, r, 1, _no_current) for r in range(4)] == [0, 0, 0, 0]
    assert [cuda_index("cuda", 4, r, 2, _no_current) for r in range(4)] == [0, 1, 0, 1]


def test_an_explicit_index_with_several_ranks_is_refused_naming_the_key():
    with pytest.raises(StudyError, match=r"pretrain\.device") as e:
        cuda_index("cuda:0", 2, 1, 2, _no_current)
    assert "'cuda:0'" in str(e.value) and "2 processes" in str(e.value)


def test_several_ranks_on_a_node_whose_cuda_reports_no_device_are_refused_naming_the_key():
    with pytest.raises(StudyError, match=r"^evaluate\.device: CUDA reports no device$"):
        cuda_index("cuda", 2, 1, 0, _no_current, key="evaluate.device")


def test_one_process_takes_the_named_or_the_current_device():
    assert cuda_index("cuda:1", 1, 0, 2, _no_current) == 1
    assert cuda_index("cuda", 1, 0, 2, lambda: 1) == 1
    with pytest.raises(StudyError, match=r"pretrain\.device"):
        cuda_index("cuda:x", 1, 0, 2, _no_current)


def test_resolve_device_uses_the_local_rank_modulo_the_visible_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    rank1 = distributed.World(rank=1, local_rank=1, size=2)
    assert resolve_device("cuda", rank1) == torch.device("cuda", 0)
    assert resolve_device("auto", rank1) == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(StudyError, match=r"pretrain\.device"):
        resolve_device("cuda:0", rank1)
    assert resolve_device("cpu", rank1) == torch.device("cpu")
