"""No hidden CPU-GPU synchronisation in a training step's losses and MoCo's queue. No GPU here: the "meta" device
stands in for it. A meta tensor has no data, so reading one on the host (int(), .item()) raises, and every tensor
an operation makes on the CPU instead of the inputs' device (then copied over: a host-to-device copy on a GPU)
shows in the log of a dispatch mode that records the device of each operation's outputs."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from study.train.backbones import build_backbone
from study.train.losses import nt_xent
from study.train.methods import METHODS


class _OutputDevices(TorchDispatchMode):
    """Records (operation, device types of its tensor outputs) for every aten operation run under it."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append((str(func), {t.device.type for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)}))
        return out

    def off_device(self, device_type: str):
        return [(op, devs) for op, devs in self.ops if devs - {device_type} or "_local_scalar_dense" in op]


def test_nt_xent_builds_its_targets_on_the_inputs_device():
    z1, z2 = torch.randn(4, 8, device="meta"), torch.randn(4, 8, device="meta")
    with _OutputDevices() as seen:
        loss = nt_xent.__wrapped__(z1, z2, 0.1)  # the body: in_fp32's autocast does not know the meta device
    assert loss.device.type == "meta" and loss.shape == ()
    assert seen.off_device("meta") == []


def test_nt_xent_targets_pair_each_row_with_its_other_view():
    """Logits that put all their mass on the other view give a loss of ~0, any other pairing does not."""
    u = torch.eye(6)[:3]
    assert nt_xent(u, u, 0.01).item() < 1e-6
    assert nt_xent(u, u.roll(1, 0), 0.01).item() > 1.0


def _moco(make_config, queue_size=5, dim=3):
    cfg = make_config(method="moco", moco={"queue_size": queue_size, "dim": dim})
    torch.manual_seed(0)
    return METHODS.get("moco")(cfg, build_backbone(cfg.backbone, cfg.width), 3)


def test_moco_enqueue_never_reads_the_pointer_on_the_host(make_config):
    m = _moco(make_config).to("meta")
    with _OutputDevices() as seen:
        for _ in range(3):
            m.enqueue(torch.randn(2, 3, device="meta"))
        m.enqueue(torch.randn(7, 3, device="meta"))  # more keys than the queue holds
    assert m.queue_ptr.device.type == "meta"
    assert seen.off_device("meta") == []


def test_moco_queue_pointer_resumes_from_the_state_dict(make_config):
    a, b = _moco(make_config), _moco(make_config)
    for i in range(3):
        a.enqueue(torch.full((2, 3), float(i)))
    b.load_state_dict(a.state_dict())
    assert int(b.queue_ptr) == 1  # 6 keys into 5 rows
    for m in (a, b):
        m.enqueue(torch.full((3, 3), 9.0))
    assert int(a.queue_ptr) == int(b.queue_ptr) == 4
    assert torch.equal(a.queue, b.queue) and a.queue[:, 0].tolist() == [2.0, 9.0, 9.0, 9.0, 2.0]
