"""Several processes of one job through torch.distributed: two real CPU processes (gloo) started with torchrun's
variables. What needs GPUs (NCCL, SyncBatchNorm, one device per rank) cannot run here; the same code paths run
with gloo on CPU. The Slurm start (submitit's environment) is tested in tests/launch/test_slurm.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from train_helpers import tiny_config

from study.errors import StudyError
from study.train import distributed
from study.train.methods import METHODS

WORKER = Path(__file__).with_name("ddp_worker.py")
# this checkout first: the worker's own folder is its sys.path[0], so `study` would otherwise be the one installed in
# the environment (another checkout's, for a second clone sharing its virtual environment)
PYTHONPATH = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))
WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(*args: str, timeout: float = 240) -> list[tuple[int, str, str]]:
    """Start WORLD ranks of ddp_worker.py with `args`; (exit code, stdout, stderr) of each."""
    port = free_port()
    procs = []
    for rank in range(WORLD):
        env = dict(os.environ, WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), PYTHONPATH=PYTHONPATH)
        env.pop("SUBMITIT_EXECUTOR", None)
        procs.append(subprocess.Popen([sys.executable, str(WORKER), *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    done = []
    for rank, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"rank {rank} did not finish in {timeout:.0f}s")
        done.append((p.returncode, out, err))
    return done


# a rare abort of torch's gloo teardown at interpreter exit (seen once in CI, after a rank's work; pytorch#179291
# describes gloo threads still holding work at finalization): not the code under test when the rank reported
GLOO_EXIT_ABORT = "terminate called without an active exception"


def run_ranks(*args: str) -> list[dict]:
    """start_ranks, every rank exiting 0 (or aborting in gloo's teardown after it printed its report); the last
    stdout line of each, as JSON."""
    outs = []
    for rank, (code, out, err) in enumerate(start_ranks(*args)):
        lines = out.strip().splitlines()
        reported = bool(lines) and lines[-1].startswith("{")
        aborted_after = code == -signal.SIGABRT and reported and err.rstrip().endswith(GLOO_EXIT_ABORT)
        assert code == 0 or aborted_after, f"rank {rank} exited {code}:\n{err[-3000:]}"
        outs.append(json.loads(lines[-1]))
    return outs


def config(method: str) -> str:
    """train_helpers.tiny_config for `method`, checkpointing every 2 steps, as the worker's JSON argument."""
    return json.dumps(tiny_config(method=method, checkpoint_every_steps=2, device="cpu").to_dict())


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_gathers_give_the_whole_batch_loss_and_its_gradient():
    assert [o["ok"] for o in run_ranks("gather")] == [True] * WORLD


def test_a_flag_raised_on_one_rank_only_is_seen_by_every_rank():
    """A signal or a due time-based checkpoint seen by one rank only: every rank must checkpoint, or the save's
    barrier hangs (rank 1 raises the first flag, no rank the second, every rank the third)."""
    assert [o["flags"] for o in run_ranks("any")] == [[True, False, True]] * WORLD


def test_a_signal_to_one_rank_makes_every_rank_save_at_that_step_and_forward_it(tiny_manifest, tmp_path):
    """A task signalled alone (rank 1, during step 3): both ranks save at step 3 besides every 2 steps (any_rank agrees
    at every step; ranks that disagreed would hang in the save's barrier), with the metrics of a run never signalled.
    SIGTERM is then dropped on both; SIGUSR2 goes on to the handler installed before on every rank, also rank 0's,
    whose handler (submitit's) is the one that requeues the job: rank 0 must not take it for a SIGTERM."""
    plain = run_ranks("pretrain", config("simclr"), str(tmp_path / "plain"))
    for name in ("SIGTERM", "SIGUSR2"):
        signalled = run_ranks("signal", config("simclr"), str(tmp_path / name), "3", name)
        assert [o["saves"] for o in signalled] == [[2, 3, 4, 6]] * WORLD, name
        assert [o["metrics"] for o in signalled] == [o["metrics"] for o in plain], name
        assert [o["requeue_handler_calls"] for o in signalled] == [int(name == "SIGUSR2")] * WORLD, name


@pytest.mark.parametrize("method", ["moco", "byol"])
def test_buffers_are_not_broadcast_and_only_batchnorm_statistics_differ_by_rank(method):
    """Without DDP's per-step buffer broadcast (32 MiB of MoCo queue a step), every parameter and buffer the training
    reads stays equal on every rank after steps on each rank's own batches: MoCo's queue and pointer, the key and
    target networks; BatchNorm running statistics differ (each rank's batches), as they do with the broadcast."""
    outs = run_ranks("buffers", config(method))
    assert [o["syncs_buffers"] for o in outs] == [False] * WORLD
    differ = outs[0]["differ"]
    assert differ and all(k.endswith(("running_mean", "running_var")) for k in differ), differ
    key = "queue" if method == "moco" else "target_encoder.conv1.weight"
    assert key in outs[0]["keys"] and key not in differ


def test_a_process_group_made_by_the_caller_gives_the_local_rank_of_the_environment(monkeypatch):
    """Which GPU of its node a rank takes is LOCAL_RANK, not the global rank (rank 5 of a job of two 4-GPU nodes is
    local rank 1); a group the caller made is left to it. One process here, told it is local rank 1."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        world = distributed.setup("cpu")
        assert (world.rank, world.local_rank, world.size, world.created_group) == (0, 1, 1, False)
        distributed.cleanup(world)
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()


def test_a_rank_told_of_another_ranks_signal_forwards_only_a_requeue(monkeypatch):
    """Rank 0, not signalled itself, learns that another rank was: it checkpoints, and takes SIGUSR2 (submitit's
    requeue, its handler is on rank 0) to forward, but no SIGTERM it never got: its log line then says the
    checkpoint came on "a signal to another rank"."""
    from study.train import loop
    from study.train.checkpoint import SignalFlag

    for requeue, forwarded in ((False, []), (True, [loop.REQUEUE_SIGNAL])):
        monkeypatch.setattr(distributed, "any_rank", lambda flags, device: [False, True, requeue])
        flag = SignalFlag()
        assert loop._agree_on_stop(flag, False, distributed.World(rank=0, size=2), torch.device("cpu")) == \
            (False, True)
        assert flag.pending == forwarded


def test_the_recorded_loss_of_several_ranks_is_their_mean_and_the_accuracy_counts_their_sum(monkeypatch):
    """Two or four ranks with equal values (all_reduce_sum stands in: it multiplies them by the ranks): the loss is
    the mean over ranks, not the sum; (correct, seen) are summed."""
    from study.train import loop

    for size in (2, 4):
        monkeypatch.setattr(distributed, "all_reduce_sum", lambda t: t.mul_(size))
        recent, acc = [], []
        pending = [(1, torch.tensor(1.5), torch.tensor(3), 4), (2, torch.tensor(0.5), torch.tensor(1), 4)]
        loop._record_steps(pending, recent, acc, 10, 10, distributed.World(rank=0, size=size), Path("x.pt"), "m")
        assert recent == [1.5, 0.5] and acc == [(3.0 * size, 4.0 * size), (1.0 * size, 4.0 * size)], size


@pytest.mark.parametrize("method", [m for m in METHODS.names() if METHODS.get(m).trains])  # a new one too
def test_two_processes_train_record_global_values_and_resume_exactly(method, tiny_manifest, tmp_path):
    full = run_ranks("pretrain", config(method), str(tmp_path / "full"))
    for out in full:  # every rank reports the same, global, values
        assert out["metrics"] == full[0]["metrics"] and out["metrics"]
        p = out["protocol"]
        assert (p["devices"], p["per_device_batch"], p["effective_batch"]) == (WORLD, 4, 8)
        assert p["sync_bn"] is False  # SyncBatchNorm needs GPUs; recorded as off
        assert out["process_group_left"] is False  # pretrain() created the group, and destroyed it
    assert [o["stopped_at"] for o in run_ranks("pretrain", config(method), str(tmp_path / "cut"), "3")] == [3] * WORLD
    resumed = run_ranks("pretrain", config(method), str(tmp_path / "cut"))
    assert [o["metrics"] for o in resumed] == [o["metrics"] for o in full]
    assert resumed[0]["protocol"]["resumed_from_steps"] == [3]
    a, b = weights(tmp_path / "full" / "encoder.pt"), weights(tmp_path / "cut" / "encoder.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_one_process_checkpoint_is_refused_by_two(tiny_manifest, tmp_path):
    from study.train import StopRequested, pretrain

    with pytest.raises(StopRequested):
        pretrain(tiny_config(checkpoint_every_steps=2, device="cpu"), tmp_path / "run", stop_at=2)
    done = start_ranks("pretrain", config("simclr"), str(tmp_path / "run"))
    assert all(code != 0 for code, _, _ in done)
    err = done[0][2]
    assert "devices" in err and "checkpoint.pt" in err, err[-2000:]


def test_a_single_task_under_torchrun_runs_without_a_process_group(monkeypatch):
    """WORLD_SIZE=1 (torchrun --nproc-per-node 1): no group is made, so no rendezvous address is needed."""
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert distributed.setup("cpu") == distributed.World() and not dist.is_initialized()


def test_the_main_process_is_global_rank_0_not_each_nodes_first():
    assert distributed.World(rank=0, local_rank=0, size=8).is_main
    assert not distributed.World(rank=4, local_rank=0, size=8).is_main


@pytest.fixture
def fake_group(monkeypatch):
    """The default group's start recorded, not run (its keyword arguments, in a list); its rank and size then those
    of the variables env:// reads; every host name resolves (rank 0's node, `gpu07`, is asked no DNS)."""
    calls = []
    monkeypatch.setattr(distributed, "_resolves", lambda host: True)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(dist, "get_rank", lambda: int(os.environ["RANK"]))
    monkeypatch.setattr(dist, "get_world_size", lambda: int(os.environ["WORLD_SIZE"]))
    return calls


def test_torchrun_ranks_take_rank_local_rank_and_size_from_its_variables_nccl_on_gpus(monkeypatch, fake_group):
    """Rank 3 of 4 on two nodes is local rank 1 (its GPU); NCCL for GPUs, gloo for CPUs."""
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    for key, value in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, value)
    assert distributed.setup("cuda") == distributed.World(3, 1, 4, created_group=True)
    assert distributed.setup("cpu") == distributed.World(3, 1, 4, created_group=True)
    assert fake_group == [{"backend": "nccl", "init_method": "env://"}, {"backend": "gloo", "init_method": "env://"}]


def test_a_slurm_task_exports_its_ranks_over_stale_ones_and_leaves_the_gpus_slurm_listed(monkeypatch, fake_group):
    """Under submitit, Slurm's variables (task 3 of 4, local id 1 on the second of two nodes) become torch's,
    replacing any set before (a job started from within another); CUDA_VISIBLE_DEVICES stays as Slurm set it."""
    slurm = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "42", "SLURM_NTASKS": "4", "SLURM_PROCID": "3",
             "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]",
             "CUDA_VISIBLE_DEVICES": "4,5", "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    for key in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.setup("cuda") == distributed.World(3, 1, 4, created_group=True)
    assert fake_group == [{"backend": "nccl", "init_method": "env://"}]
    got = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "CUDA_VISIBLE_DEVICES")}
    assert got == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu07",
                   "CUDA_VISIBLE_DEVICES": "4,5"}


def _slurm_task_2(monkeypatch, *, local_id: str, node_id: str, nodes: str, nodelist: str) -> None:
    """Task 1 of a Slurm job of two tasks under submitit, no torch variables set (what the export sets is undone
    after the test)."""
    slurm = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "42", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
             "SLURM_LOCALID": local_id, "SLURM_NODEID": node_id, "SLURM_JOB_NUM_NODES": nodes,
             "SLURM_JOB_NODELIST": nodelist}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.setenv(key, "")  # so that what the export sets is undone after the test
        monkeypatch.delenv(key)


def test_a_slurm_job_of_two_tasks_makes_a_process_group_too(monkeypatch, fake_group):
    """The smallest job of several tasks (two, one node) exports Slurm's variables and makes its group."""
    _slurm_task_2(monkeypatch, local_id="1", node_id="0", nodes="1", nodelist="gpu07")
    assert distributed.setup("cpu") == distributed.World(1, 1, 2, created_group=True)
    assert fake_group == [{"backend": "gloo", "init_method": "env://"}] and os.environ["MASTER_ADDR"] == "gpu07"


def _two_node_slurm_task(monkeypatch, tmp_path, scontrol: str) -> None:
    """Task 1 of a job on Slurm nodes n1 and n2; `scontrol` the body of the stand-in scontrol first on PATH."""
    _slurm_task_2(monkeypatch, local_id="0", node_id="1", nodes="2", nodelist="n[1-2]")
    (tmp_path / "scontrol").write_text(f"#!/bin/sh\n{scontrol}\n")
    (tmp_path / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_rank_0_is_reached_by_its_nodes_node_addr_where_its_node_name_does_not_resolve(monkeypatch, fake_group,
                                                                                       tmp_path):
    """A NodeName that is no host name (NodeName=n1 NodeHostname=gpu-a07): submitit's MASTER_ADDR, the first name
    of SLURM_JOB_NODELIST, does not resolve, and every rank retried it until the group's 30-minute timeout, its log
    saying only that the addresses of (n1, port) "cannot be retrieved". The node's NodeAddr is used instead."""
    _two_node_slurm_task(monkeypatch, tmp_path, 'echo "NodeName=n1 Arch=x86_64 CoresPerSocket=1 NodeAddr=10.1.2.7 '
                                                'NodeHostName=gpu-a07 Version=22.05.8"')
    monkeypatch.setattr(distributed, "_resolves", lambda host: host != "n1")
    assert distributed.setup("cpu") == distributed.World(1, 0, 2, created_group=True)
    assert os.environ["MASTER_ADDR"] == "10.1.2.7" and fake_group == [{"backend": "gloo", "init_method": "env://"}]


def test_a_rank_0_node_that_resolves_by_no_name_is_a_clear_error_not_a_30_minute_wait(monkeypatch, fake_group,
                                                                                      tmp_path):
    _two_node_slurm_task(monkeypatch, tmp_path, 'echo "slurm_load_node error: Unable to contact slurm controller" >&2'
                                                '; exit 1')
    monkeypatch.setattr(distributed, "_resolves", lambda host: False)
    with pytest.raises(StudyError, match=r"rank 0's node 'n1' \(the first of SLURM_JOB_NODELIST\) does not resolve "
                                         r".*nor does its NodeAddr \(scontrol show node did not say\)"):
        distributed.setup("cpu")
    assert fake_group == []  # no group started to wait on it
    (tmp_path / "scontrol").write_text("#!/bin/sh\necho NodeName=n1 NodeAddr=n1-eth0 NodeHostName=n1\n")
    with pytest.raises(StudyError, match=r"nor does its NodeAddr \(n1-eth0\)"):  # a NodeAddr that is a name, too
        distributed.master_address("n1")


def test_data_parallel_puts_a_rank_on_its_own_gpu_and_lets_cpus_choose(monkeypatch):
    def ddp(module, device_ids=None, broadcast_buffers=True):
        return device_ids, broadcast_buffers

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", ddp)
    assert distributed.data_parallel(torch.nn.Linear(1, 1), torch.device("cuda", 2)) == ([2], False)
    assert distributed.data_parallel(torch.nn.Linear(1, 1), torch.device("cpu")) == (None, False)
