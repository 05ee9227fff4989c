"""One rank of a multi-process CPU run (gloo), started by tests/train/test_distributed.py with torchrun's variables
(WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) set.

    python ddp_worker.py pretrain CONFIG_JSON RUN_DIR [STOP_AT]   -> prints the run's metrics and protocol as JSON
    python ddp_worker.py gather                                    -> checks gather_with_grad / gather_no_grad
    python ddp_worker.py any                                       -> any_rank of flags rank 1 alone raises
    python ddp_worker.py signal CONFIG_JSON RUN_DIR STEP SIGNAL    -> pretrain, rank 1 alone signalled at STEP
    python ddp_worker.py buffers CONFIG_JSON                       -> the method's state after steps on other batches
"""
from __future__ import annotations

import json
import os
import sys

import torch


def report(out: dict) -> None:
    """This rank's one JSON line, flushed: on stdout before the interpreter's exit, which on gloo can end in an abort
    of torch's own teardown (see test_distributed.run_ranks)."""
    print(json.dumps(out, default=str), flush=True)


def pretrain_rank(config_json: str, run_dir: str, stop_at: int | None) -> None:
    from study.train import PretrainConfig, StopRequested, pretrain

    cfg = PretrainConfig.from_dict(json.loads(config_json))
    try:
        out = pretrain(cfg, run_dir, stop_at=stop_at)
    except StopRequested as e:
        out = {"stopped_at": e.step}
    out["process_group_left"] = torch.distributed.is_initialized()  # the group pretrain() made is gone
    report(out)


def check_gathers() -> None:
    """Rank r holds rows 3r..3r+2 of each view of a random batch of 3W pairs: gathered, the loss of the whole batch
    computed on every rank, or each rank's share of it (its own pairs against every row, as SimCLR computes it) whose
    mean over ranks is that loss; either way a rank's gradient is W times the whole-batch gradient of its own rows
    (DDP then divides by W); gather_no_grad concatenates in rank order."""
    from study.train import distributed
    from study.train.losses import nt_xent

    world = distributed.setup("cpu")
    n, w = 3, world.size
    full = torch.randn(2 * w * n, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z1_all, z2_all = full[: w * n], full[w * n:]
    mine = slice(world.rank * n, (world.rank + 1) * n)
    r1, r2 = z1_all.clone().requires_grad_(True), z2_all.clone().requires_grad_(True)
    ref = nt_xent(r1, r2, 0.5)
    ref.backward()
    for pairs in (None, (world.rank * n, n)):
        z1, z2 = z1_all[mine].clone().requires_grad_(True), z2_all[mine].clone().requires_grad_(True)
        loss = nt_xent(distributed.gather_with_grad(z1), distributed.gather_with_grad(z2), 0.5, pairs)
        loss.backward()
        whole = loss.detach() if pairs is None else distributed.all_reduce_sum(loss.detach().clone()) / w
        assert torch.allclose(whole, ref, atol=1e-12), (pairs, float(whole), float(ref))
        assert torch.allclose(z1.grad, w * r1.grad[mine], atol=1e-12), pairs
        assert torch.allclose(z2.grad, w * r2.grad[mine], atol=1e-12), pairs

    keys = torch.full((2, 3), float(world.rank + 1))
    assert distributed.gather_no_grad(keys)[:, 0].tolist() == [float(r + 1) for r in range(w) for _ in range(2)]
    distributed.cleanup(world)
    report({"rank": world.rank, "ok": True})


def check_any_rank() -> None:
    """Flags [raised on rank 1 only, raised nowhere, raised everywhere]: what any_rank gives this rank."""
    from study.train import distributed

    world = distributed.setup("cpu")
    flags = distributed.any_rank([world.rank == 1, False, True], torch.device("cpu"))
    distributed.cleanup(world)
    report({"rank": world.rank, "flags": flags})


def pretrain_signalled(config_json: str, run_dir: str, at_step: int, name: str) -> None:
    """pretrain_rank, rank 1 alone sent signal `name` during step `at_step` (a task signalled alone): the steps at
    which each rank took part in a save (each calls _refuse_nonfinite_weights before it), the metrics, and the calls
    of a SIGUSR2 handler installed before the run (submitit's place: it requeues the job from rank 0)."""
    import signal

    from study.train import PretrainConfig, loop, pretrain
    from study.train.methods import METHODS

    cfg = PretrainConfig.from_dict(json.loads(config_json))
    saves: list[int] = []
    check = loop._refuse_nonfinite_weights

    def record(method, step, *args):
        saves.append(step)
        return check(method, step, *args)

    loop._refuse_nonfinite_weights = record
    requeued: list[int] = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: requeued.append(signum))
    cls = METHODS.get(cfg.method)
    after_step = cls.after_step

    def signalled(self, step, total):
        after_step(self, step, total)
        if step == at_step and torch.distributed.get_rank() == 1:
            signal.raise_signal(getattr(signal, name))

    cls.after_step = signalled
    out = pretrain(cfg, run_dir)
    report({"rank": int(os.environ["RANK"]), "saves": saves, "requeue_handler_calls": len(requeued),
            "metrics": out["metrics"]})


def check_buffers(config_json: str) -> None:
    """Five steps of the config's method (in distributed.data_parallel) on each rank's own random batches: whether
    DDP broadcasts buffers before a forward, and the state entries (parameters and buffers) that differ by rank."""
    import hashlib

    from study.train import PretrainConfig, distributed
    from study.train.backbones import build_backbone
    from study.train.methods import METHODS
    from study.train.optim import build_optimizer

    world = distributed.setup("cpu")
    cfg = PretrainConfig.from_dict(json.loads(config_json))
    torch.manual_seed(0)
    method = METHODS.get(cfg.method)(cfg, build_backbone(cfg.backbone, cfg.width), 3)
    model = distributed.data_parallel(method, torch.device("cpu"))
    optimizer = build_optimizer(method, cfg.optim, lr=0.1)
    g = torch.Generator().manual_seed(100 + world.rank)
    for step in range(1, 6):
        views = [torch.randn(4, 3, 16, 16, generator=g) for _ in range(2)]
        loss, _ = model(views, torch.randint(0, 3, (4,), generator=g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.after_step(step, 5)
    digest = {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() for k, v in method.state_dict().items()}
    every = [None] * world.size
    torch.distributed.all_gather_object(every, digest)
    differ = sorted(k for k in digest if len({d[k] for d in every}) > 1)
    syncs = model.will_sync_module_buffers()
    distributed.cleanup(world)
    report({"rank": world.rank, "syncs_buffers": syncs, "differ": differ, "keys": sorted(digest)})


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "pretrain":
        pretrain_rank(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "gather":
        check_gathers()
    elif sys.argv[1] == "any":
        check_any_rank()
    elif sys.argv[1] == "signal":
        pretrain_signalled(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "buffers":
        check_buffers(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r} (rank {os.environ.get('RANK')})")
