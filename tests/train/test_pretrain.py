"""The training loop on CPU over real image files: exact resume, config refusal, NaN, signals, fine-tuning."""
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import PIL
import pytest
import torch
import torchvision

from device import device_kind, expected_precision, is_cuda
from train_helpers import write_images
from study.errors import StudyError
from study.results.record import code_version, protocol_fingerprint
import study.train.loop as loop
from study.train import StopRequested, pretrain
from study.train.backbones import encoder_provenance, load_encoder
from study.train.checkpoint import load_checkpoint
from study.train.config import UNTRAINED_METHODS
from study.train.methods import METHODS
from study.train.optim import Schedule
from study.train.resume import Sessions


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("method", [m for m in METHODS.names() if METHODS.get(m).trains])  # a new one too
def test_stopped_and_resumed_run_ends_bit_identical(method, tiny_manifest, make_config, tmp_path):
    cfg = make_config(method=method)
    full = pretrain(cfg, tmp_path / "full")
    with pytest.raises(StopRequested):
        pretrain(cfg, tmp_path / "cut", stop_at=3)
    ck = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (3, 1, 0)  # 24 images / batch 8: 3 steps per epoch
    assert not (tmp_path / "cut" / "encoder.pt").exists()
    with pytest.raises(StopRequested):  # stopped a second time: each resume is recorded
        pretrain(cfg, tmp_path / "cut", stop_at=4)
    ck = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (4, 1, 1)  # mid-epoch
    resumed = pretrain(cfg, tmp_path / "cut")
    _assert_same_state(_weights(tmp_path / "full" / "encoder.pt"), _weights(tmp_path / "cut" / "encoder.pt"))
    _assert_same_state(load_checkpoint(tmp_path / "full" / "checkpoint.pt")["method"],
                       load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["method"])
    assert resumed["metrics"] == full["metrics"]
    assert resumed["protocol"]["resumed_from_steps"] == [3, 4]
    # the weights did move
    init = pretrain(make_config(method="random"), tmp_path / "init")
    assert init["metrics"] == []
    moved = [k for k, v in _weights(tmp_path / "init" / "encoder.pt").items()
             if v.is_floating_point() and not torch.equal(v, _weights(tmp_path / "full" / "encoder.pt")[k])]
    assert moved


def test_a_run_resumed_with_another_cpu_thread_count_warns_and_records_each_sessions(tiny_manifest, make_config,
                                                                                       tmp_path, capfd):
    """On a CPU the float sums depend on torch's thread count, so the weights of a run resumed with another count
    differ in the last bits from an uninterrupted run's: said at the resume, and every session's count recorded."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(StopRequested):
            pretrain(make_config(device="cpu"), tmp_path / "run", stop_at=2)
        torch.set_num_threads(2)
        out = pretrain(make_config(device="cpu"), tmp_path / "run")
        assert out["protocol"]["cpu_threads"] == [1, 2]
        assert "this session has 2 torch threads, the run began with 1" in capfd.readouterr().err
        assert pretrain(make_config(device="cpu"), tmp_path / "same")["protocol"]["cpu_threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_each_step_line_tells_the_time_left_at_this_sessions_rate(tiny_manifest, make_config, tmp_path, capfd,
                                                                   monkeypatch):
    """`eta` on every step line but the last, in a first session and in a resumed one, whose rate counts only the
    steps it ran (not those of the session before)."""
    asked, real = [], loop.eta
    monkeypatch.setattr(loop, "eta", lambda remaining, done, elapsed_s: asked.append((remaining, done))
                        or real(remaining, done, elapsed_s))
    with pytest.raises(StopRequested):
        pretrain(make_config(log_every_steps=1), tmp_path / "run", stop_at=2)
    pretrain(make_config(log_every_steps=1), tmp_path / "run")
    steps = [ln for ln in capfd.readouterr().err.splitlines() if re.match(r"\[pretrain\] step \d+/", ln)]
    total = int(re.search(r"step \d+/(\d+)", steps[0]).group(1))
    assert [int(re.search(r"step (\d+)/", ln).group(1)) for ln in steps] == [1, 2] + list(range(3, total + 1))
    assert all(re.search(r", eta \d+ s$", ln) for ln in steps[:-1]) and ", eta" not in steps[-1]
    assert asked == [(total - 1, 1), (total - 2, 2)] + [(total - s, s - 2) for s in range(3, total + 1)]


def test_step_lines_and_protocol_tell_the_gpu_memory_peak_on_cuda_only(tiny_manifest, make_config, tmp_path, capfd,
                                                                        monkeypatch):
    """On CUDA each step line says the GPU memory peak (batch size tuning) and the protocol records this session's
    (kept out of the fingerprint); a CPU run says none. No GPU here: the peak is stood in for on a CPU run."""
    out = pretrain(make_config(log_every_steps=1, device="cpu"), tmp_path / "cpu")  # on a GPU test device too
    cpu = [ln for ln in capfd.readouterr().err.splitlines() if "[pretrain] step " in ln]
    assert cpu and not any("GPU peak" in ln for ln in cpu) and out["protocol"]["gpu_peak_memory_gb"] is None
    assert loop.peak_gpu_memory_gb(torch.device("cpu")) is None
    monkeypatch.setattr(loop, "peak_gpu_memory_gb", lambda device: 31.25)
    out = pretrain(make_config(log_every_steps=1, device="cpu"), tmp_path / "cuda")
    lines = [ln for ln in capfd.readouterr().err.splitlines() if "[pretrain] step " in ln]
    assert lines and all(re.search(r" img/s 31\.2 GB GPU peak(, eta|$)", ln) for ln in lines), lines
    assert out["protocol"]["gpu_peak_memory_gb"] == 31.25
    assert protocol_fingerprint(out["protocol"]) == protocol_fingerprint(dict(out["protocol"], gpu_peak_memory_gb=1.0))


def test_each_run_tells_its_own_gpu_memory_peak(tiny_manifest, make_config, tmp_path, monkeypatch):
    """A process that trains more than once (an evaluation fine-tunes, then scores, once per labeled size) tells each
    run's peak, not an earlier run's: each run starts the count afresh on its device. CUDA's counters stood in for."""
    held = {"now": 2e9, "peak": 9e9}  # an earlier run peaked at 9 GB; 2 GB are held now
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: held.update(peak=held["now"]))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: held["peak"])
    cuda = torch.device("cuda", 0)
    loop.reset_gpu_peak(cuda)
    assert loop.peak_gpu_memory_gb(cuda) == 2.0
    loop.reset_gpu_peak(torch.device("cpu"))  # nothing to count off CUDA
    assert held["peak"] == 2e9
    resets = []
    monkeypatch.setattr(loop, "reset_gpu_peak", resets.append)
    for run in ("a", "b"):
        pretrain(make_config(device="cpu"), tmp_path / run)
    assert resets == [torch.device("cpu")] * 2


def test_protocol_records_effective_values(tiny_manifest, make_config, tmp_path):
    out = pretrain(make_config(), tmp_path / "run")
    p = out["protocol"]
    assert [m["metric"] for m in out["metrics"]] == ["loss"]
    assert out["metrics"][0]["labeled_size"] is None and out["metrics"][0]["level"] is None
    assert p["manifest"] == "tiny" and p["manifest_content_hash"] == tiny_manifest.content_hash
    assert (p["per_device_batch"], p["devices"], p["effective_batch"]) == (8, 1, 8)
    assert p["effective_lr"] == pytest.approx(1.0 * 8 / 256)
    assert (p["steps"], p["steps_per_epoch"], p["epochs"], p["warmup_steps"]) == (6, 3, 2.0, 2)
    assert p["temperature"] == 0.1 and p["corruption"] == "none" and p["device_kind"] == device_kind()
    assert p["cpu_threads"] == torch.get_num_threads()  # CPU results depend on it (float summation order)
    assert p["augmentation"]["image_size"] == 16 and p["precision"] == expected_precision()
    assert p["head"] == [p["feature_dim"], 32, 16]  # SimCLR's own entry (Method.protocol): its head's dims
    assert p["images_per_s"] > 0 and p["wall_time_s"] > 0
    assert p["code_version"] == code_version()  # what the result record of this run says (git's dirty flag too)
    assert (p["torch_version"], p["torchvision_version"]) == (torch.__version__, torchvision.__version__)
    assert p["tf32"] is None if not is_cuda() else set(p["tf32"]) == {"convolutions", "matmul"}
    assert p["pillow_version"] == PIL.__version__ and p["jpeg_decoder"].startswith(("libjpeg-turbo ", "libjpeg "))
    enc = load_encoder(tmp_path / "run" / "encoder.pt")
    assert enc(torch.randn(2, 3, 16, 16)).shape == (2, enc.feature_dim)
    # the encoder carries its recipe: the fingerprint its result record gets
    assert encoder_provenance(tmp_path / "run" / "encoder.pt")[0] == protocol_fingerprint(p)
    # every step's images (6 steps of 8) over the training loop's time, which the last checkpoint keeps
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert p["images_per_s"] == pytest.approx(6 * 8 / ck["train_time_s"], rel=1e-9)
    # a finished run asked again returns at once with the same metrics
    again = pretrain(make_config(), tmp_path / "run")
    assert again["metrics"] == out["metrics"]
    assert again["protocol"]["images_per_s"] == pytest.approx(out["protocol"]["images_per_s"], rel=0.05)


def test_a_dict_is_read_as_its_config_and_a_mistyped_key_is_named(tiny_manifest, make_config, tmp_path):
    """As evaluate does: a notebook's dict goes through PretrainConfig.from_dict (was: AttributeError 'dict' object
    has no attribute 'device')."""
    d = make_config(steps=2, optim={"warmup_epochs": 0}).to_dict()
    out = pretrain(d, tmp_path / "run")
    assert out["protocol"]["steps"] == 2 and (tmp_path / "run" / "encoder.pt").exists()
    with pytest.raises(StudyError, match=r"^pretrain: unknown key\(s\) 'bach_size' \(did you mean 'batch_size'\?\)"):
        pretrain({**d, "bach_size": 8}, tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_checkpoint_from_other_config_is_refused_naming_keys(tiny_manifest, make_config, tmp_path):
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    with pytest.raises(StudyError) as e:
        pretrain(make_config(temperature=0.5, optim={"lr": 2.0}), tmp_path / "run")
    msg = str(e.value)
    assert "config.temperature" in msg and "config.optim.lr" in msg and "checkpoint.pt" in msg
    assert "config.seed" not in msg
    # runtime-only settings may change on resume
    out = pretrain(make_config(log_every_steps=1, checkpoint_every_steps=5), tmp_path / "run")
    assert out["protocol"]["resumed_from_steps"] == [2]


def test_how_often_a_run_logs_and_checkpoints_changes_neither_its_metrics_nor_its_fingerprint(
        tiny_manifest, make_config, tmp_path):
    """The loss metric is the last epoch's mean (here 3 steps), not the log window's; the fingerprint leaves the
    run-only settings out, so such runs of one recipe aggregate."""
    from study.results import protocol_fingerprint

    a = pretrain(make_config(log_every_steps=2), tmp_path / "a")
    b = pretrain(make_config(log_every_steps=5, checkpoint_every_steps=2, checkpoint_every_minutes=30), tmp_path / "b")
    assert a["metrics"] == b["metrics"] and a["metrics"][0]["metric"] == "loss"
    assert protocol_fingerprint(a["protocol"]) == protocol_fingerprint(b["protocol"])
    recent = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["recent_losses"]  # all 6 steps' losses
    assert len(recent) == 6 and a["metrics"][0]["value"] == pytest.approx(sum(recent[-3:]) / 3, rel=1e-12)
    assert a["metrics"][0]["value"] != pytest.approx(sum(recent) / 6, rel=1e-9)


def test_a_checkpoint_from_before_a_setting_existed_resumes_at_its_default(tiny_manifest, make_config, tmp_path):
    """A key added to the config since the checkpoint was written (as `head_output_bn` was) matches while it has
    the default, which computes what the code before it did; any other value is refused, naming the key."""
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    del ck["fingerprint"]["config"]["head_output_bn"]
    torch.save(ck, path)
    with pytest.raises(StudyError, match=r"config.head_output_bn: checkpoint '<absent>', now True"):
        pretrain(make_config(head_output_bn=True), tmp_path / "run")
    assert pretrain(make_config(), tmp_path / "run")["protocol"]["resumed_from_steps"] == [2]


def test_a_checkpoint_lacking_what_a_resume_reads_is_refused_naming_the_key(tiny_manifest, make_config, tmp_path):
    """A checkpoint edited by hand: the run stops with the file and the key, not a KeyError, and keeps the file."""
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    del ck["train_acc_window"]
    torch.save(ck, path)
    with pytest.raises(StudyError, match=r"checkpoint.pt: checkpoint lacks train_acc_window"):
        pretrain(make_config(), tmp_path / "run")
    assert path.exists()


def test_a_checkpoint_of_a_setting_away_from_its_default_is_refused_by_a_run_at_the_default(tiny_manifest, make_config,
                                                                                           tmp_path):
    """Only a key the checkpoint lacks is taken to be at its default; one it holds is compared."""
    with pytest.raises(StopRequested):
        pretrain(make_config(seed=1), tmp_path / "run", stop_at=2)
    with pytest.raises(StudyError, match="config.seed: checkpoint 1, now 0"):
        pretrain(make_config(), tmp_path / "run")


def test_a_checkpoint_of_a_manifest_rebuilt_since_with_other_images_is_refused(tiny_manifest, make_config, tmp_path):
    """The manifest deleted and built again under its name from other images (as its freeze error suggests): the
    checkpoint was trained on other data."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    for p in (tmp_path / "manifests").glob("tiny.*"):
        p.unlink()
    write_images(tmp_path / "images2", n=30)
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "images2", split="train", name="tiny",
                               sizes=[24], labeled_sizes=[12, 24]))
    assert load_manifest("tiny").content_hash != tiny_manifest.content_hash
    with pytest.raises(StudyError, match="manifest_content_hash"):
        pretrain(make_config(), tmp_path / "run")


def test_a_lars_checkpoint_of_the_torch_style_momentum_buffer_is_refused(tiny_manifest, make_config, tmp_path):
    """LARS keeps lr x g in its momentum buffer (SimCLR's classic momentum); a checkpoint of the earlier buffer, g
    alone (its fingerprint lacks `lars_momentum`), would resume with the momentum off by the learning rate."""
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    del ck["fingerprint"]["lars_momentum"]
    torch.save(ck, path)
    with pytest.raises(StudyError, match=r"lars_momentum: checkpoint '<absent>', now 'classic: lr inside the buffer"):
        pretrain(make_config(), tmp_path / "run")


def test_checkpoint_from_a_gpu_bf16_run_is_refused_on_cpu(tiny_manifest, make_config, tmp_path):
    """`device` is a runtime key, but what it resolves to is not: a GPU run's checkpoint (bf16, CUDA random
    streams, channels_last, here on 2 GPUs) resumed on a CPU would silently continue in fp32 with other augmentation
    draws, memory format and batch split. Simulated by rewriting the fingerprint of a CPU checkpoint as a GPU run
    writes it (no GPU here)."""
    with pytest.raises(StopRequested):
        pretrain(make_config(device="cpu"), tmp_path / "run", stop_at=2)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert (ck["fingerprint"]["device_type"], ck["fingerprint"]["precision"]) == ("cpu", "fp32")
    ck["fingerprint"].update(device_type="cuda", precision="bf16", channels_last=True, devices=2)
    torch.save(ck, path)
    with pytest.raises(StudyError) as e:
        pretrain(make_config(device="cpu"), tmp_path / "run")
    msg = str(e.value)
    assert "device_type: checkpoint 'cuda', now 'cpu'" in msg and "precision: checkpoint 'bf16', now 'fp32'" in msg
    assert "channels_last: checkpoint True, now False" in msg and "devices: checkpoint 2, now 1" in msg


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tiny_manifest, make_config, tmp_path, monkeypatch,
                                                                 bad):
    """loss x NaN also makes the weights NaN; loss + inf leaves the gradients (and so the weights) finite: only the
    loss check can stop that run."""
    import study.train.methods.simclr as simclr

    real, calls = simclr.nt_xent, []

    def flaky(z1, z2, t, pairs=None):
        calls.append(1)
        loss = real(z1, z2, t, pairs)
        if len(calls) != 5:
            return loss
        return loss * float("nan") if bad == "nan" else loss + float("inf")

    monkeypatch.setattr(simclr, "nt_xent", flaky)
    with pytest.raises(StudyError, match=f"loss is {bad} at step 5") as e:
        pretrain(make_config(checkpoint_every_steps=2), tmp_path / "run")
    assert "last good checkpoint" in str(e.value)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 4
    assert not (tmp_path / "run" / "encoder.pt").exists()


def test_sigusr2_checkpoints_then_calls_the_previous_handler(tiny_manifest, make_config, tmp_path, monkeypatch,
                                                             capsys):
    seen = []

    def previous(signum, frame):  # stands for submitit's handler, which requeues the job
        seen.append((signum, load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"]))

    real_gen = loop.batch_generator

    def gen(seed, step, device, rank=0):
        if step == 2:
            os.kill(os.getpid(), signal.SIGUSR2)
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_gen(seed, step, device, rank)

    monkeypatch.setattr(loop, "batch_generator", gen)
    old_usr2 = signal.signal(signal.SIGUSR2, previous)
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        out = pretrain(make_config(), tmp_path / "run")
        assert signal.getsignal(signal.SIGUSR2) is previous  # restored after the run
        assert signal.getsignal(signal.SIGTERM) == old_term
    finally:
        signal.signal(signal.SIGUSR2, old_usr2)
    # the signal came during step 3 (index 2): the checkpoint at its end was on disk before the handler ran
    assert seen == [(signal.SIGUSR2, 3)]
    # SIGTERM during step 5 only checkpoints and training carries on to the end
    assert out["protocol"]["steps"] == 6 and load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 6
    err = capsys.readouterr().err  # each off-schedule checkpoint is said (the log otherwise ends at an older step)
    assert ("[pretrain] checkpoint written at step 3/6 on SIGUSR2 (a requeue or a stop: the job resumes from here)\n"
            in err and "at step 5/6 on SIGTERM\n" in err), err


def test_a_signal_sent_several_times_in_one_step_is_named_once(tiny_manifest, make_config, tmp_path, monkeypatch,
                                                              capsys):
    """A local run stopped hard (its runner killed) has its worker signalled more than once before the step ends:
    the log's line names each signal once, not once per delivery."""
    real_gen = loop.batch_generator

    def gen(seed, step, device, rank=0):
        if step == 2:
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGTERM)
        return real_gen(seed, step, device, rank)

    monkeypatch.setattr(loop, "batch_generator", gen)
    pretrain(make_config(), tmp_path / "run")
    err = capsys.readouterr().err
    assert "[pretrain] checkpoint written at step 3/6 on SIGTERM\n" in err, err


def test_sigterm_to_the_whole_process_group_checkpoints_with_loader_workers(tiny_manifest, tmp_path):
    """Slurm signals every process of a job step, the DataLoader workers too. A worker must leave SIGTERM to the
    main process (torch's worker handler dies of a SIGTERM its parent did not send, and the main process then
    failed mid-step with no checkpoint). Real processes: a run with 2 loader workers in its own session."""
    import json
    import subprocess
    import sys
    import time

    here = Path(__file__).parent
    child = ("import json, sys\n"
             "from train_helpers import tiny_config\n"
             "from study.train import pretrain\n"
             "pretrain(tiny_config(**json.loads(sys.argv[1])), sys.argv[2])\n")
    over = {"steps": 100000, "num_workers": 2, "log_every_steps": 5, "device": "cpu"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]))
    proc = subprocess.Popen([sys.executable, "-c", child, json.dumps(over), str(tmp_path / "run")], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    import threading

    guard = threading.Timer(300, os.killpg, (proc.pid, signal.SIGKILL))  # a stalled run fails the test, not CI
    guard.start()
    try:
        seen = next((line for line in proc.stderr if "step 10/" in line), None)
        guard.cancel()
        assert seen, f"the run ended or stalled before step 10 (exit code {proc.poll()})"
        os.killpg(proc.pid, signal.SIGTERM)  # as slurmstepd does: every process of the step
        ckpt = tmp_path / "run" / "checkpoint.pt"
        deadline = time.monotonic() + 60
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ckpt.exists() and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        assert load_checkpoint(ckpt)["step"] >= 10  # the signal's checkpoint; the run trains on
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("work", ["pretrain", "extract"])
def test_an_unreadable_image_read_by_a_loader_worker_ends_the_process(tiny_manifest, tmp_path, work):
    """The worker's error comes back with its own message, and the process exits: its loader workers ignore
    SIGTERM (see the test above), so workers left alive by the error used to hang the interpreter's exit for ever,
    and `study submit --cluster local` with it. Real processes: a run with a loader worker."""
    import subprocess
    import sys

    broken = tiny_manifest.abs_path(tiny_manifest.table.iloc[5])
    broken.write_bytes(b"\x89PNG garbage")
    here = Path(__file__).parent
    child = ("import sys, torch\n"
             "from train_helpers import tiny_config\n"
             "from study.errors import StudyError\n"
             "from study.manifests import load_manifest\n"
             "from study.train import pretrain\n"
             "from study.train.augment import build_augment\n"
             "from study.evaluate.features import forward_rows\n"
             "try:\n"
             "    if sys.argv[1] == 'pretrain':\n"
             "        pretrain(tiny_config(num_workers=1, device='cpu'), sys.argv[2])\n"
             "    else:\n"
             "        m = load_manifest('tiny')\n"
             "        aug = build_augment({'preset': 'eval', 'image_size': 16})\n"
             "        forward_rows(torch.nn.Flatten(), m, m.all(), aug, 4, torch.device('cpu'), num_workers=1)\n"
             "except StudyError as e:\n"
             "    print(f'error: {e}', flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]))
    proc = subprocess.run([sys.executable, "-c", child, work, str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=120, start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"error: cannot read image {broken} (manifest tiny)")
    assert "Original Traceback" not in proc.stdout


def test_a_run_killed_writing_a_checkpoint_resumes_bit_identical_and_its_temporary_is_removed(tiny_manifest,
                                                                                                make_config, tmp_path):
    """SIGKILL (the out-of-memory killer, a node crash) while a checkpoint is written: the checkpoint before it is
    intact and the run resumes from it to the weights of a run never killed; the killed write's temporary (as large
    as a checkpoint) is removed by the next session, as nothing else would. A real process, killed in torch.save."""
    here = Path(__file__).parent
    child = ("import json, os, signal, sys, torch\n"
             "from train_helpers import tiny_config\n"
             "from study.train import pretrain\n"
             "real = torch.save\n"
             "def save_then_die(obj, where, *args, **kwargs):\n"
             "    real(obj, where, *args, **kwargs)\n"
             "    if isinstance(obj, dict) and obj.get('step') == 4:\n"
             "        os.kill(os.getpid(), signal.SIGKILL)\n"
             "torch.save = save_then_die\n"
             "torch.set_num_threads(1)  # as the resume below (tests/conftest.py): float sums depend on it\n"
             "pretrain(tiny_config(**json.loads(sys.argv[1])), sys.argv[2])\n")
    over = {"checkpoint_every_steps": 2, "device": "cpu"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]))
    proc = subprocess.run([sys.executable, "-c", child, json.dumps(over), str(tmp_path / "cut")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 2
    assert len(list((tmp_path / "cut").glob(".checkpoint.pt.*.tmp"))) == 1
    resumed = pretrain(make_config(**over), tmp_path / "cut")
    full = pretrain(make_config(**over), tmp_path / "full")
    assert resumed["protocol"]["resumed_from_steps"] == [2] and resumed["metrics"] == full["metrics"]
    _assert_same_state(_weights(tmp_path / "full" / "encoder.pt"), _weights(tmp_path / "cut" / "encoder.pt"))
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["checkpoint.pt", "encoder.pt", "train_log.csv"]


def test_a_batch_larger_than_the_training_images_is_refused(tiny_manifest, make_config, tmp_path):
    """With an epoch budget it used to train 0 steps and write the random encoder as a finished run."""
    with pytest.raises(StudyError, match="batch_size 32 is larger than the 24 training images"):
        pretrain(make_config(batch_size=32, steps=None, epochs=100), tmp_path / "run")
    assert not (tmp_path / "run" / "encoder.pt").exists()
    with pytest.raises(StudyError, match=r"^pretrain\.batch_size 25 is larger than the 24 training images .*lower "
                                         r"batch_size or pretrain on more images$"):  # one image short, a step budget
        pretrain(make_config(batch_size=25), tmp_path / "run")


def test_a_batch_not_splitting_over_the_processes_is_refused_naming_its_key(tiny_manifest, make_config, tmp_path):
    """It names the config key (a fine-tune's: the evaluation's `finetune` section) and the plan's remedy, before
    the run folder is made or a checkpoint read (the sampler's own check named no key)."""
    two = loop.distributed.World(rank=0, size=2)  # rank 0 of 2: the check needs no process group
    for over, key in (({}, "pretrain"), ({"subset": "labeled"}, "evaluate.finetune")):
        with pytest.raises(StudyError, match=rf"^{re.escape(key)}\.batch_size 9 does not split over the 2 processes "
                                             r"of this run: make batch_size a multiple of 2$"):
            loop._pretrain(make_config(batch_size=9, device="cpu", **over), tmp_path / "run", two, 0.0, None,
                           tiny_manifest)
        assert not (tmp_path / "run").exists()


def test_an_augmentation_of_fewer_views_than_the_method_needs_is_refused(tiny_manifest, make_config, tmp_path):
    with pytest.raises(StudyError, match=r"^pretrain\.augment: preset gives 1 view\(s\), method simclr needs 2$"):
        pretrain(make_config(augment={"preset": "supervised"}), tmp_path / "run")
    assert not (tmp_path / "run" / "encoder.pt").exists()


@pytest.mark.parametrize("kind", ["parameter", "buffer"])
def test_weights_made_non_finite_by_a_finite_loss_step_are_never_saved(tiny_manifest, make_config, tmp_path,
                                                                      monkeypatch, kind):
    """An update that overflows leaves the step's loss finite (it was computed before); the checkpoint due after
    it must not take those weights, nor may the encoder. Buffers too (a batch-norm running statistic)."""
    real_step, calls, name = loop.train_step, [], {}

    def overflowing(model, *a, **k):
        out = real_step(model, *a, **k)
        calls.append(1)
        if len(calls) == 4:
            tensors = model.named_parameters() if kind == "parameter" else model.named_buffers()
            name["key"], t = next((n, t) for n, t in tensors if t.is_floating_point())
            with torch.no_grad():
                t.fill_(float("inf"))
        return out

    monkeypatch.setattr(loop, "train_step", overflowing)
    with pytest.raises(StudyError, match="weights are not finite after step 4") as e:
        pretrain(make_config(checkpoint_every_steps=2), tmp_path / "run")
    assert name["key"] in str(e.value) and "last good checkpoint" in str(e.value)
    assert kind == "buffer" or name["key"] == "encoder.conv1.weight"
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2
    assert not (tmp_path / "run" / "encoder.pt").exists()


def test_unreadable_image_in_a_run_names_file_and_manifest(tiny_manifest, make_config, tmp_path):
    bad = tiny_manifest.abs_path(tiny_manifest.table.iloc[5])
    bad.write_bytes(b"broken")
    with pytest.raises(StudyError) as e:
        pretrain(make_config(), tmp_path / "run")
    assert str(bad) in str(e.value) and "manifest tiny" in str(e.value)


def test_finetune_from_encoder_on_labeled_subset(tiny_manifest, make_config, tmp_path):
    pretrain(make_config(steps=3), tmp_path / "ssl")
    cfg = make_config(method="supervised", subset="labeled", size=16, init_encoder=str(tmp_path / "ssl" / "encoder.pt"),
                      optim={"name": "sgd", "lr": 0.5}, steps=4)
    out = pretrain(cfg, tmp_path / "ft")
    names = [m["metric"] for m in out["metrics"]]
    assert names == ["loss", "train_top1"] and 0 <= out["metrics"][1]["value"] <= 1
    assert out["protocol"]["images"] == 16 and out["protocol"]["init_encoder"].endswith("encoder.pt")
    # fine-tuning starts from the encoder's weights: at learning rate 0 the written encoder has the loaded one's
    # weights (training moves only the batch-norm statistics)
    import dataclasses

    pretrain(dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=0.0)), tmp_path / "ft0")
    loaded, kept = _weights(tmp_path / "ssl" / "encoder.pt"), _weights(tmp_path / "ft0" / "encoder.pt")
    params = [k for k in loaded if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.equal(loaded[k], kept[k]) for k in params)
    assert any(not torch.equal(v, _weights(tmp_path / "ssl" / "encoder.pt")[k])
               for k, v in _weights(tmp_path / "ft" / "encoder.pt").items() if v.is_floating_point())
    wrong = make_config(method="supervised", width=8, init_encoder=str(tmp_path / "ssl" / "encoder.pt"))
    with pytest.raises(StudyError, match="init_encoder"):
        pretrain(wrong, tmp_path / "wrong")
    with pytest.raises(StudyError, match="pretrain.size"):
        pretrain(make_config(size=100), tmp_path / "big")


def test_checkpoints_by_steps_and_by_minutes(tiny_manifest, make_config, tmp_path, monkeypatch):
    saved = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, state: (saved.append(state["step"]), real(path, state)))
    pretrain(make_config(checkpoint_every_steps=4), tmp_path / "by_steps")
    assert saved == [4, 6]  # every 4 steps, and at the end
    saved.clear()
    pretrain(make_config(checkpoint_every_minutes=1e-9), tmp_path / "by_time")
    assert saved == [1, 2, 3, 4, 5, 6]
    saved.clear()  # steps of 40 s on a fake clock, a checkpoint every minute: every second step, and the last

    class Clock:
        now = 1.0e9

        @classmethod
        def time(cls):
            return cls.now

    real_batches = loop.batch_generator

    def batches(*a, **k):
        Clock.now += 40.0
        return real_batches(*a, **k)

    monkeypatch.setattr(loop, "time", Clock)
    monkeypatch.setattr(loop, "batch_generator", batches)
    pretrain(make_config(checkpoint_every_minutes=1), tmp_path / "by_minute")
    assert saved == [2, 4, 6]


def test_exact_resume_on_a_real_corrupted_manifest(real_manifests, make_config, tmp_path):
    from study.manifests import load_manifest

    cfg = make_config(manifest="tinyreal-ds2", size=24)
    full = pretrain(cfg, tmp_path / "full")
    with pytest.raises(StopRequested):
        pretrain(cfg, tmp_path / "cut", stop_at=4)
    pretrain(cfg, tmp_path / "cut")
    _assert_same_state(_weights(tmp_path / "full" / "encoder.pt"), _weights(tmp_path / "cut" / "encoder.pt"))
    p = full["protocol"]
    assert p["corruption"] == load_manifest("tinyreal-ds2").corruption.slug
    assert p["manifest_content_hash"] == load_manifest("tinyreal-ds2").content_hash
    clean = pretrain(make_config(manifest="tinyreal", size=24), tmp_path / "clean")
    assert clean["protocol"]["corruption"] == "none"
    assert clean["metrics"][0]["value"] != full["metrics"][0]["value"]  # the corruption reached the images


@pytest.fixture
def toy_method():
    """A method with settings of its own, registered as its one new file would register it; unregistered after."""
    from dataclasses import dataclass

    from study.train.methods.simclr import SimCLR

    @dataclass(frozen=True)
    class ToySettings:
        scale: float = 2.0

        def validate(self, where):
            if not isinstance(self.scale, (int, float)) or self.scale <= 0:
                raise StudyError(f"{where}.scale: expected a number > 0, got {self.scale!r}")

    class Toy(SimCLR):
        settings = ToySettings

        def __init__(self, cfg, encoder, num_classes):
            super().__init__(cfg, encoder, num_classes)
            self.temperature *= cfg.method_settings["toy"].scale

    METHODS.register("toy")(Toy)
    try:
        yield Toy
    finally:
        METHODS.unregister("toy")


def test_a_new_methods_own_settings_need_no_config_edit(toy_method, tiny_manifest, make_config, tmp_path):
    """`pretrain.<method>` sets the settings a method declares (`Method.settings`): checked at their keys, used,
    recorded, in its own runs' records only; and a checkpoint that recorded every method's settings (as older ones
    did, before the method existed) still resumes."""
    with pytest.raises(StudyError, match=r"pretrain.toy.scale: expected a number > 0, got -1"):
        make_config(method="toy", toy={"scale": -1})
    with pytest.raises(StudyError, match=r"pretrain.toy: unknown key\(s\) 'scal' \(did you mean 'scale'\?\)"):
        make_config(method="toy", toy={"scal": 1})
    out = pretrain(make_config(method="toy", toy={"scale": 3.0}), tmp_path / "toy")
    assert out["protocol"]["toy"] == {"scale": 3.0}
    assert out["protocol"]["config"]["toy"] == {"scale": 3.0} and "moco" not in out["protocol"]["config"]
    simclr = make_config(method="simclr", steps=1, optim={"warmup_epochs": 0})
    recorded = pretrain(simclr, tmp_path / "simclr")["protocol"]
    assert "toy" not in recorded and "toy" not in recorded["config"]  # the other methods' records are as they were

    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=2)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert "toy" not in ck["fingerprint"]["config"]
    ck["fingerprint"]["config"].update(moco={"queue_size": 8}, byol={"dim": 4})  # as an older checkpoint held them
    torch.save(ck, path)
    assert pretrain(make_config(), tmp_path / "run")["protocol"]["resumed_from_steps"] == [2]


def test_a_training_run_of_no_step_is_refused(tiny_manifest, make_config, tmp_path):
    """It wrote the untrained encoder labelled with the method, and no checkpoint (a fine-tune of it then failed
    on an 'unreadable checkpoint'). PretrainConfig refuses `steps: 0`; a config built around it is refused here."""
    import dataclasses

    with pytest.raises(StudyError, match=r"pretrain.steps: method supervised trains, but steps 0 come to no step"):
        pretrain(dataclasses.replace(make_config(method="supervised"), steps=0), tmp_path / "run")
    assert not (tmp_path / "run" / "encoder.pt").exists()
    assert "steps" not in pretrain(make_config(method="random", steps=0), tmp_path / "random")["protocol"]


def test_a_size_the_subset_cannot_fill_and_an_empty_subset_are_refused_naming_them(make_config, tmp_path):
    """A subset with fewer rows than `size` asks for (labeled ranks given to some rows only) is refused naming the
    sizes it has, and a subset of no row naming it, before anything trains."""
    import pandas as pd

    from train_helpers import TinyManifest

    df = pd.DataFrame({"path": [f"{i}.png" for i in range(24)], "label": [i % 3 for i in range(24)],
                       "class_name": [f"c{i % 3}" for i in range(24)], "rank": range(24),
                       "labeled_rank": [i if i < 5 else 99 for i in range(24)]})
    m = TinyManifest("m1", tmp_path, df, {"kind": "image"})
    m.labeled_sizes = [5]
    with pytest.raises(StudyError, match=r"^pretrain\.size: 8 images asked for, manifest m1 has 5 in its labeled "
                                         r"subset \(sizes: \[5\]\)$"):
        loop.training_rows(make_config(subset="labeled", size=8), m)
    assert len(loop.training_rows(make_config(subset="labeled", size=5), m)) == 5
    empty = TinyManifest("m1", tmp_path, df.assign(rank=100), {"kind": "image"})
    with pytest.raises(StudyError, match=r"^manifest m1: the pretrain subset is empty$"):
        loop.training_rows(make_config(), empty)


def test_a_warmup_of_the_whole_run_is_refused_and_one_of_most_of_it_warned_about(tiny_manifest, make_config, tmp_path,
                                                                                 capfd):
    """With a step budget, warmup in epochs could take every step (no step at the peak lr, no decay). Here 3 steps
    per epoch (24 images, batch 8)."""
    with pytest.raises(StudyError) as e:
        pretrain(make_config(steps=6, optim={"warmup_epochs": 2}), tmp_path / "all")
    assert "pretrain.optim.warmup_epochs 2 x 3 steps per epoch comes to 6 warmup steps of the run's 6 (steps 6)" \
        in str(e.value)
    assert not (tmp_path / "all" / "encoder.pt").exists()
    with pytest.raises(StudyError, match=r"comes to 9 warmup steps of the run's 6 \(epochs 2\)"):
        pretrain(make_config(steps=None, epochs=2, optim={"warmup_epochs": 3}), tmp_path / "epochs")
    capfd.readouterr()
    out = pretrain(make_config(steps=6, optim={"warmup_epochs": 4 / 3}), tmp_path / "most")
    assert out["protocol"]["warmup_steps"] == 4
    assert "WARNING: pretrain.optim.warmup_epochs 1.33333 x 3 steps per epoch comes to 4 warmup steps of the run's 6 " \
           "(steps 6), more than half of the run" in capfd.readouterr().err
    pretrain(make_config(steps=6, optim={"warmup_epochs": 1}), tmp_path / "half")
    assert "WARNING" not in capfd.readouterr().err


def test_a_resume_by_other_code_warns_and_the_protocol_lists_each_sessions_version(tiny_manifest, make_config,
                                                                                   tmp_path, capfd):
    """The checkpoint keeps each session's code version (simulated: an earlier session's rewritten into it)."""
    from study.train.resume import UNKNOWN_VERSION

    now = code_version()
    for run, before in (("other", ["0.0.9+git.abcdef1"]), ("old", None)):
        with pytest.raises(StopRequested):
            pretrain(make_config(), tmp_path / run, stop_at=2)
        path = tmp_path / run / "checkpoint.pt"
        ck = torch.load(path, map_location="cpu", weights_only=True)
        assert ck["code_versions"] == [now]
        if before is None:  # written before checkpoints kept it
            del ck["code_versions"]
        else:
            ck["code_versions"] = before
        torch.save(ck, path)
        capfd.readouterr()
        out = pretrain(make_config(), tmp_path / run)
        earlier = before[0] if before else UNKNOWN_VERSION
        assert out["protocol"]["code_version"] == [earlier, now]
        err = capfd.readouterr().err
        assert f"this session runs code version {now}, the checkpoint was written by {earlier}" in err
        assert load_checkpoint(path)["code_versions"] == [earlier, now]
    # one version throughout: no warning, one string
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "same", stop_at=2)
    capfd.readouterr()
    assert pretrain(make_config(), tmp_path / "same")["protocol"]["code_version"] == now
    assert "code version" not in capfd.readouterr().err


def test_a_resume_under_another_torch_or_gpu_model_warns_and_the_protocol_lists_each_sessions(tiny_manifest,
                                                                                            make_config, tmp_path,
                                                                                            capfd):
    """A requeue may land on a node of other libraries or another GPU model: the checkpoint keeps each session's
    (simulated: an earlier session's rewritten into it), the resume says which changed, and the record lists
    each session's value of what changed; a checkpoint from before it kept them resumes with this session's alone."""
    kind = device_kind()
    for run, before in (("other", {"torch_version": "1.0.0", "device_kind": "NVIDIA V100"}), ("old", None)):
        with pytest.raises(StopRequested):
            pretrain(make_config(), tmp_path / run, stop_at=2)
        path = tmp_path / run / "checkpoint.pt"
        ck = torch.load(path, map_location="cpu", weights_only=True)
        (now,) = ck["environments"]
        assert now["torch_version"] == torch.__version__ and now["device_kind"] == kind
        if before is None:  # written before checkpoints kept them
            del ck["environments"]
        else:
            ck["environments"] = [{**now, **before}]
        torch.save(ck, path)
        capfd.readouterr()
        p = pretrain(make_config(), tmp_path / run)["protocol"]
        err = capfd.readouterr().err
        if before is None:
            assert (p["torch_version"], p["device_kind"]) == (torch.__version__, kind) and "torch_version" not in err
            continue
        assert p["torch_version"] == ["1.0.0", torch.__version__] and p["device_kind"] == ["NVIDIA V100", kind]
        assert p["numpy_version"] == now["numpy_version"]  # unchanged: one value
        assert (f"this session runs torch_version {torch.__version__} (the checkpoint's session: 1.0.0), "
                f"device_kind {kind} (the checkpoint's session: NVIDIA V100)") in err
        assert load_checkpoint(path)["environments"] == [{**now, **before}, now]


def test_settings_that_change_nothing_here_do_not_block_a_resume(tiny_manifest, make_config, tmp_path):
    """`precision: auto` is fp32 on a CPU, `channels_last` and `sync_bn` are off there, BYOL has no temperature,
    SimCLR's default is 0.1, and another method's settings are not read: a resume with those changes ends as the
    run without them."""
    cpu = {"device": "cpu"}
    full = pretrain(make_config(**cpu), tmp_path / "full")
    with pytest.raises(StopRequested):
        pretrain(make_config(**cpu), tmp_path / "cut", stop_at=2)
    same = make_config(**cpu, precision="fp32", channels_last=False, sync_bn=False, temperature=0.1,
                       moco={"queue_size": 64})
    resumed = pretrain(same, tmp_path / "cut")
    assert resumed["protocol"]["resumed_from_steps"] == [2] and resumed["metrics"] == full["metrics"]
    _assert_same_state(_weights(tmp_path / "full" / "encoder.pt"), _weights(tmp_path / "cut" / "encoder.pt"))
    with pytest.raises(StopRequested):
        pretrain(make_config(**cpu, method="byol"), tmp_path / "byol", stop_at=2)
    assert pretrain(make_config(**cpu, method="byol", temperature=0.5), tmp_path / "byol")["metrics"]
    # what does change the run is still refused
    with pytest.raises(StopRequested):
        pretrain(make_config(**cpu), tmp_path / "real", stop_at=2)
    with pytest.raises(StudyError) as e:
        pretrain(make_config(**cpu, precision="bf16", temperature=0.2, moco={"queue_size": 64}), tmp_path / "real")
    msg = str(e.value)
    assert "precision: checkpoint 'fp32', now 'bf16'" in msg and "config.temperature: checkpoint 0.1, now 0.2" in msg
    assert "moco" not in msg and "channels_last" not in msg


def test_a_process_group_made_by_the_caller_outlives_the_run(tiny_manifest, make_config, tmp_path):
    """pretrain() destroyed the default process group whoever had created it."""
    import socket

    import torch.distributed as dist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        pretrain(make_config(steps=2, device="cpu", optim={"warmup_epochs": 0}), tmp_path / "run")
        assert dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_an_encoder_file_written_again_has_the_same_bytes_and_carries_its_pretraining_protocol(tiny_manifest,
                                                                                             make_config, tmp_path):
    """Its sha256 keys the feature cache and a fine-tune's checkpoint: a rerun of a finished run (or of `random`)
    rewrites the same bytes. It carries the protocol its recipe fingerprint hashes, seed kept, for its evaluations."""
    from study.hashing import file_sha256
    from study.results.record import recipe_protocol

    for method in ("simclr", "random"):
        path = tmp_path / method / "encoder.pt"
        out = pretrain(make_config(method=method, seed=3), tmp_path / method)
        first = file_sha256(path)
        again = pretrain(make_config(method=method, seed=3), tmp_path / method)  # already trained: written again
        assert file_sha256(path) == first
        for key in ("resumed_from_steps", "cpu_threads", "code_version"):  # no session trained: the finishing one's
            assert again["protocol"].get(key) == out["protocol"].get(key), key
        recipe, carried = encoder_provenance(path)
        assert carried == {**recipe_protocol(out["protocol"]), "seed": 3}
        assert protocol_fingerprint(carried) == recipe == protocol_fingerprint(out["protocol"])
    assert encoder_provenance(tmp_path / "simclr" / "missing.pt") == (None, None)


# two values of each training setting (TRAINING_SETTINGS), each valid for the tiny config
TRAINING_VALUES = {"epochs": (1.0, 5.0), "steps": (6, 2), "batch_size": (8, 4), "image_size": (16, 24),
                   "optim": ({"name": "lars", "lr": 1.0}, {"name": "sgd", "lr": 0.05, "weight_decay": 0.0}),
                   "augment": (None, {"flip_p": 0.0}), "precision": ("auto", "fp32"), "channels_last": (True, False),
                   "sync_bn": (True, False)}


@pytest.mark.parametrize("method", UNTRAINED_METHODS)
def test_a_method_that_trains_nothing_runs_and_records_one_recipe_whatever_the_training_settings(
        tiny_manifest, make_config, tmp_path, method):
    """Its job ids leave the training settings out (UNREAD_SETTINGS), so its run must not depend on them: at two
    values of each, the same encoder file bytes (which key the feature cache) and the same recipe fingerprint, and a
    protocol and config that hold none of them. An older record that holds its schedule is the same recipe."""
    from study.hashing import file_sha256
    from study.train.config import TRAINING_PROTOCOL_KEYS, TRAINING_SETTINGS, UNREAD_SETTINGS

    assert set(TRAINING_VALUES) == set(TRAINING_SETTINGS) <= set(UNREAD_SETTINGS[method])
    own = {}
    if method == "pretrained":
        own = {method: {"encoder_file": str(tmp_path / "given" / "encoder.pt")}}
        pretrain(make_config(method="random", seed=5), tmp_path / "given")
    runs = {}
    for key, values in TRAINING_VALUES.items():
        for i, value in enumerate(values):
            out = pretrain(make_config(method=method, **own, **{key: value}), tmp_path / f"{key}{i}")
            runs[key, i] = file_sha256(tmp_path / f"{key}{i}" / "encoder.pt"), protocol_fingerprint(out["protocol"])
            assert not set(out["protocol"]) & set(TRAINING_PROTOCOL_KEYS), key
            assert not set(out["protocol"]["config"]) & set(TRAINING_SETTINGS), key
    assert len(set(runs.values())) == 1, runs
    older = {**out["protocol"], "steps": 0, "effective_lr": 1.0, "precision": "fp32", "temperature": None,
             "config": {**out["protocol"]["config"], "epochs": 1.0, "optim": {"name": "lars", "lr": 1.0}}}
    assert protocol_fingerprint(older) == runs["epochs", 0][1]
    trained = pretrain(make_config(method="simclr"), tmp_path / "simclr")["protocol"]  # one that trains records them
    assert set(TRAINING_PROTOCOL_KEYS) - {"trust_coefficient"} < set(trained) and "optim" in trained["config"]


def test_a_pretrained_run_writes_the_given_encoder_and_its_recipe_follows_the_weights_not_the_path(
        tiny_manifest, make_config, tmp_path):
    """`pretrained` trains nothing: its encoder is `init_encoder`'s weights, recorded by their sha256 (the recipe),
    the file's and an imported one's source checkpoint (said, not fingerprinted): the same weights imported from
    elsewhere, in a file of other bytes, are the same recipe; other weights another."""
    import shutil

    from study.hashing import file_sha256
    from study.train.backbones import weights_sha256
    from study.train.import_encoder import import_encoder

    torch.manual_seed(5)
    tv = torchvision.models.resnet18(weights=None)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    import_encoder(tmp_path / "tv.pth", tmp_path / "a.pt", "resnet18")
    shutil.copy(tmp_path / "tv.pth", tmp_path / "copy.pth")  # the same weights, imported from elsewhere: another file
    import_encoder(tmp_path / "copy.pth", tmp_path / "b.pt", "resnet18")
    assert file_sha256(tmp_path / "b.pt") != file_sha256(tmp_path / "a.pt")
    over = {"method": "pretrained", "backbone": "resnet18", "width": 64}

    def given(path):
        return {"pretrained": {"encoder_file": str(path)}}

    out = pretrain(make_config(**over, **given(tmp_path / "a.pt")), tmp_path / "run")
    p = out["protocol"]
    assert out["metrics"] == [] and "steps" not in p and "augmentation" not in p
    assert p["init_encoder_sha256"] == file_sha256(tmp_path / "a.pt") and p["init_encoder_recipe"] is None
    assert p["init_encoder_weights_sha256"] == weights_sha256(load_encoder(tmp_path / "a.pt"))
    assert p["init_encoder_file"] == str((tmp_path / "a.pt").resolve())
    assert p["imported_from"]["source"] == str((tmp_path / "tv.pth").resolve())
    _assert_same_state(_weights(tmp_path / "run" / "encoder.pt"), _weights(tmp_path / "a.pt"))
    moved = pretrain(make_config(**over, **given(tmp_path / "b.pt")), tmp_path / "run_b")["protocol"]
    assert protocol_fingerprint(moved) == protocol_fingerprint(p)
    torch.manual_seed(6)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "other.pth")
    import_encoder(tmp_path / "other.pth", tmp_path / "c.pt", "resnet18")
    other = pretrain(make_config(**over, **given(tmp_path / "c.pt")), tmp_path / "run_c")["protocol"]
    assert protocol_fingerprint(other) != protocol_fingerprint(p)
    with pytest.raises(StudyError, match=r"pretrain.pretrained.encoder_file: .*a.pt holds \{'name': 'resnet18', "
                                         r"'width': 64\}, the run asks for \{'name': 'resnet18_small'"):
        pretrain(make_config(method="pretrained", **given(tmp_path / "a.pt")), tmp_path / "run_d")
    with pytest.raises(StudyError, match=r"^pretrain.init_encoder: method pretrained scores the encoder "
                                         r"pretrained.encoder_file names, and starts from no other"):
        make_config(**over, **given(tmp_path / "a.pt"), init_encoder=str(tmp_path / "a.pt"))


def test_a_run_started_from_an_encoder_resumes_in_a_moved_folder(tiny_manifest, make_config, tmp_path, capsys):
    """The checkpoint pins the init encoder by its content (sha256), not its path: a copied or moved workdir
    (another mount point, a purge-safe copy) resumes, and ends as an uninterrupted run does. Its log lines say
    [finetune], not [pretrain]."""
    import shutil

    pretrain(make_config(steps=3), tmp_path / "a" / "ssl")

    def ft(root):
        return make_config(method="supervised", subset="labeled", size=16, steps=4,
                           init_encoder=str(root / "ssl" / "encoder.pt"))

    full = pretrain(ft(tmp_path / "a"), tmp_path / "a" / "full")
    with pytest.raises(StopRequested):
        pretrain(ft(tmp_path / "a"), tmp_path / "a" / "cut", stop_at=2)
    shutil.move(tmp_path / "a", tmp_path / "b")
    capsys.readouterr()
    resumed = pretrain(ft(tmp_path / "b"), tmp_path / "b" / "cut")
    assert resumed["protocol"]["resumed_from_steps"] == [2] and resumed["metrics"] == full["metrics"]
    # one recipe: neither the encoder's folder nor the earlier session changes the fingerprint
    assert protocol_fingerprint(resumed["protocol"]) == protocol_fingerprint(full["protocol"])
    err = capsys.readouterr().err
    assert "[finetune] resuming" in err and "[pretrain]" not in err
    _assert_same_state(_weights(tmp_path / "b" / "full" / "encoder.pt"),
                       _weights(tmp_path / "b" / "cut" / "encoder.pt"))


def test_a_run_started_from_an_encoder_regenerated_since_at_its_path_is_refused(tiny_manifest, make_config,
                                                                                tmp_path):
    """The checkpoint pins the init encoder by its content: an encoder written again at the same path (another
    pretraining, here another seed) is another start, refused naming its sha256, not resumed from weights that
    began elsewhere."""
    import shutil

    pretrain(make_config(steps=3), tmp_path / "ssl")
    ft = make_config(method="supervised", subset="labeled", size=16, steps=4,
                     init_encoder=str(tmp_path / "ssl" / "encoder.pt"))
    with pytest.raises(StopRequested):
        pretrain(ft, tmp_path / "cut", stop_at=2)
    pretrain(make_config(steps=3, seed=1), tmp_path / "other")
    shutil.copyfile(tmp_path / "other" / "encoder.pt", tmp_path / "ssl" / "encoder.pt")
    with pytest.raises(StudyError, match="init_encoder_sha256: checkpoint '[0-9a-f]+', now '[0-9a-f]+'"):
        pretrain(ft, tmp_path / "cut")


def test_the_checkpoint_keeps_only_the_latest_steps_losses_and_counts(tmp_path):
    """`recent_losses` and `train_acc_window` hold the last `loss_steps` and `acc_steps` steps, not every step of the
    run: a long run's checkpoint does not grow with it."""
    recent, acc = [0.5, 0.5, 0.5], [(1.0, 2.0)] * 3
    pending = [(step, torch.tensor(float(step)), torch.tensor(1.0), 4) for step in (4, 5, 6)]
    loop._record_steps(pending, recent, acc, 2, 4, loop.distributed.World(), tmp_path / "checkpoint.pt", "tiny")
    assert recent == [5.0, 6.0] and acc == [(1.0, 2.0), (1.0, 4.0), (1.0, 4.0), (1.0, 4.0)]


def test_train_top1_counts_each_image_once_and_a_step_that_saw_none_counts_zero():
    """correct / seen over the steps: a batch of one image right is 1.0 (no floor above one image); a step that
    reports `correct` but no image seen (an empty count) gives 0, not a division by zero; no labels: None."""
    assert loop._top1([(1.0, 1.0)]) == 1.0 and loop._top1([(3.0, 4.0), (1.0, 4.0)]) == 0.5
    assert loop._top1([(0.0, 0.0)]) == 0.0 and loop._top1([]) is None


def test_non_finite_weights_are_named_the_first_five_then_dots(tmp_path, monkeypatch):
    """The error lists at most five of the bad tensors, with " ..." where there are more; where this rank's are
    finite and another rank's are not, it says so."""
    def refused(bad: int) -> str:
        model = torch.nn.Sequential(*[torch.nn.Linear(1, 1, bias=False) for _ in range(bad + 1)])
        with torch.no_grad():
            for layer in model[:bad]:
                layer.weight.fill_(float("nan"))
        with pytest.raises(StudyError) as e:
            loop._refuse_nonfinite_weights(model, 7, tmp_path / "checkpoint.pt", "tiny", torch.device("cpu"))
        return str(e.value)

    assert ": 0.weight, 1.weight, 2.weight, 3.weight, 4.weight; training stopped" in refused(5)
    assert ": 0.weight, 1.weight, 2.weight, 3.weight, 4.weight ...; training stopped" in refused(6)
    monkeypatch.setattr(loop.distributed, "any_rank", lambda flags, device: [True])
    with pytest.raises(StudyError, match=r"after step 3 \(manifest tiny\): \(on another rank\); training stopped, "
                                         "no checkpoint was written yet"):
        loop._refuse_nonfinite_weights(torch.nn.Linear(1, 1), 3, tmp_path / "checkpoint.pt", "tiny",
                                       torch.device("cpu"))


def test_a_runs_lines_and_schedule_errors_name_what_it_is(make_config, capsys):
    """Lines are tagged [pretrain], or on a labeled subset [finetune] (from an encoder) or [scratch]; a schedule
    error of a labeled-subset run names the evaluation's `finetune` section; its warning is logged by rank 0 only."""
    for cfg, tag in ((make_config(), "pretrain"), (make_config(subset="labeled"), "scratch"),
                     (make_config(subset="labeled", init_encoder="enc.pt"), "finetune")):
        loop._log(cfg, "x")
        assert capsys.readouterr().err == f"[{tag}] x\n"
    whole = {"steps": 6, "optim": {"warmup_epochs": 2}}  # 3 steps per epoch: 6 warmup steps of 6
    with pytest.raises(StudyError, match=r"^evaluate\.finetune\.optim\.warmup_epochs 2 x 3 steps"):
        loop._check_schedule(make_config(subset="labeled", **whole), 24, loop.distributed.World())
    with pytest.raises(StudyError, match=r"^pretrain\.optim\.warmup_epochs 2 x 3 steps"):
        loop._check_schedule(make_config(**whole), 24, loop.distributed.World())
    most = make_config(steps=6, optim={"warmup_epochs": 4 / 3})
    loop._check_schedule(most, 24, loop.distributed.World(rank=1, size=2))
    assert capsys.readouterr().err == ""
    loop._check_schedule(most, 24, loop.distributed.World(rank=0, size=2))
    assert "WARNING: pretrain.optim.warmup_epochs" in capsys.readouterr().err
    short = make_config(method="moco", steps=3, optim={"warmup_epochs": 2 / 3})  # 24 keys enqueued, a queue of 32
    loop._check_schedule(short, 24, loop.distributed.World())
    assert [line.split(" ", 2)[2][:28] for line in capsys.readouterr().err.splitlines()] == [
        "pretrain.optim.warmup_epochs", "pretrain.moco.queue_size 32 "]  # each its own line, prefixed


def test_a_resume_warns_of_a_change_since_the_session_before_and_the_loss_covers_at_most_loss_steps(make_config,
                                                                                                   capsys):
    """A third session under the second's code version warns of nothing (the second warned); the loss metric is
    over the last epoch's steps, at most LOSS_STEPS of them, even where the log's window kept more."""
    cpu = torch.device("cpu")
    for versions, warned in ((["a", "b", "b"], False), (["a", "b", "c"], True)):
        past = Sessions(step=2, versions=versions, threads=[1, 1, 1])
        loop._log_resume(make_config(), Path("run"), past, 6, cpu)
        err = capsys.readouterr().err
        assert ("WARNING" in err) == warned
        assert not warned or "WARNING: this session runs code version c, the checkpoint was written by b" in err
    past = Sessions(recent=[10.0] * 500 + [1.0] * loop.LOSS_STEPS)
    sched = Schedule(10**6, 256, 2 * loop.LOSS_STEPS, 10**4, 0, 0.1, 0.0)
    session = type("Session", (), {"past": past, "sched": sched})()
    assert loop._Session.metrics(session) == [loop._row("loss", 1.0)]


def test_each_step_trains_at_the_scheduled_learning_rate(tiny_manifest, make_config, tmp_path, monkeypatch):
    """Peak 1.0 x 8/256, warmup 0.5 epoch = 2 steps, then cosine towards final_lr_fraction x peak over the other 4:
    the rate of every parameter group at each of the 6 optimizer steps."""
    seen, real = [], loop.train_step

    def spy(model, optimizer, *args, **kwargs):
        out = real(model, optimizer, *args, **kwargs)
        seen.append([g["lr"] for g in optimizer.param_groups])
        return out

    monkeypatch.setattr(loop, "train_step", spy)
    pretrain(make_config(optim={"final_lr_fraction": 0.2}), tmp_path / "run")
    peak = 1.0 * 8 / 256
    expected = [0.0, peak / 2] + [peak * (0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * k / 4))) for k in range(4)]
    assert seen == [pytest.approx([lr, lr]) for lr in expected]


def test_a_resumed_runs_wall_time_counts_its_earlier_sessions(tiny_manifest, make_config, tmp_path):
    """wall_time_s is the whole run's, over every session: the earlier ones' (from the checkpoint; a long first
    session simulated by rewriting it) plus this one's. Each later checkpoint carries the sums on, the training
    loop's time too (images_per_s: every step's images over it); a finished run asked again keeps its record."""
    with pytest.raises(StopRequested):
        pretrain(make_config(), tmp_path / "run", stop_at=3)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    ck["wall_time_s"], ck["train_time_s"] = 1000.0, 500.0
    torch.save(ck, path)
    p = pretrain(make_config(), tmp_path / "run")["protocol"]
    assert p["earlier_sessions_seconds"] == 1000.0
    assert 1000.0 < p["wall_time_s"] < 1000.0 + 300
    last = load_checkpoint(path)
    assert 1000.0 < last["wall_time_s"] <= p["wall_time_s"] and 500.0 < last["train_time_s"] < 500.0 + 300
    assert p["images_per_s"] == pytest.approx(6 * 8 / last["train_time_s"], rel=1e-9)
    again = pretrain(make_config(), tmp_path / "run")["protocol"]  # trains nothing: no time of its own is added
    assert again["wall_time_s"] == again["earlier_sessions_seconds"] == last["wall_time_s"]


def _step_stats(monkeypatch) -> list[tuple[float, float]]:
    """(correct, seen) of each training step the run makes, appended as it makes them."""
    seen, real = [], loop.train_step

    def spy(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        seen.append((float(stats["correct"]), float(stats["seen"])))
        return loss, stats

    monkeypatch.setattr(loop, "train_step", spy)
    return seen


def _accuracy(steps: list[tuple[float, float]]) -> float:
    return sum(c for c, _ in steps) / sum(n for _, n in steps)


def test_train_top1_is_the_accuracy_over_the_last_epochs_steps(tiny_manifest, make_config, tmp_path, monkeypatch):
    """As the loss: over the last epoch (3 steps here: 24 images, batch 8), not over the whole run's 9 steps."""
    seen = _step_stats(monkeypatch)
    out = pretrain(make_config(method="supervised", steps=9), tmp_path / "run")
    assert len(seen) == 9
    last = seen[-3:]
    top1 = {m["metric"]: m["value"] for m in out["metrics"]}["train_top1"]
    assert top1 == pytest.approx(_accuracy(last), rel=1e-12)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["train_acc_window"] == [list(x) for x in last]


def test_the_curves_train_top1_covers_the_same_window_as_its_loss_when_the_window_is_longer_than_an_epoch(
        tiny_manifest, make_config, tmp_path, monkeypatch):
    """Logged every 6 steps with 3 steps per epoch (24 images, batch 8): each row's train_top1 is over its 6 steps,
    as its loss is, while the run's train_top1 metric stays the last epoch's."""
    from study.train.curve import read_curve

    seen = _step_stats(monkeypatch)
    cfg = make_config(device="cpu", method="supervised", steps=12, log_every_steps=6, seed=1)
    out = pretrain(cfg, tmp_path / "sup")
    rows = read_curve(tmp_path / "sup" / "train_log.csv")
    assert [r["step"] for r in rows] == ["6", "12"] and len(seen) == 12
    for row, steps in zip(rows, (seen[:6], seen[6:])):
        assert float(row["train_top1"]) == pytest.approx(_accuracy(steps), rel=1e-5)
    top1 = {m["metric"]: m["value"] for m in out["metrics"]}["train_top1"]
    last_epoch, last_row = _accuracy(seen[-3:]), _accuracy(seen[-6:])
    assert last_epoch != last_row and top1 == pytest.approx(last_epoch, rel=1e-12)  # seed 1: the two differ


def test_a_stop_asked_at_the_last_step_lets_the_run_finish(tiny_manifest, make_config, tmp_path):
    """stop_at=k stops a run before its end with StopRequested(k); a run whose last step is k simply ends: its
    encoder is written and its metrics returned."""
    with pytest.raises(StopRequested) as e:
        pretrain(make_config(), tmp_path / "cut", stop_at=4)
    assert e.value.step == 4 and load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 4
    out = pretrain(make_config(), tmp_path / "run", stop_at=6)
    assert [m["metric"] for m in out["metrics"]] == ["loss"] and (tmp_path / "run" / "encoder.pt").exists()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 6


@pytest.fixture
def noisy_method():
    """SimCLR whose loss is scaled by a draw of torch's global generator (as dropout or a random mask draws),
    registered as 'noisy'; unregistered after."""
    from study.train.methods.simclr import SimCLR

    class Noisy(SimCLR):
        def forward(self, views, labels):
            loss, stats = super().forward(views, labels)
            return loss * (1 + torch.rand(())), stats

    METHODS.register("noisy")(Noisy)
    try:
        yield Noisy
    finally:
        METHODS.unregister("noisy")


def test_a_method_drawing_from_the_global_generator_resumes_bit_identical(noisy_method, tiny_manifest, make_config,
                                                                           tmp_path):
    """The checkpoint keeps every global RNG and a resume restores it: the draws go on where the stopped session
    left them, not again from the seed (the loader and the augmentations never draw from it)."""
    cfg = make_config(method="noisy")
    full = pretrain(cfg, tmp_path / "full")
    with pytest.raises(StopRequested):
        pretrain(cfg, tmp_path / "cut", stop_at=3)
    resumed = pretrain(cfg, tmp_path / "cut")
    assert resumed["protocol"]["resumed_from_steps"] == [3] and resumed["metrics"] == full["metrics"]
    _assert_same_state(_weights(tmp_path / "full" / "encoder.pt"), _weights(tmp_path / "cut" / "encoder.pt"))


def test_a_method_is_told_the_steps_done_after_each_update(tiny_manifest, make_config, tmp_path, monkeypatch):
    """`after_step(step, total)` gets the steps done so far, 1 after the first update (BYOL's target then moves at
    tau_base, its schedule's k = step - 1 = 0), and goes on from the checkpoint's step in a resumed session."""
    byol, seen = METHODS.get("byol"), []
    real = byol.after_step

    def spy(self, step, total):
        seen.append((step, total))
        real(self, step, total)

    monkeypatch.setattr(byol, "after_step", spy)
    with pytest.raises(StopRequested):
        pretrain(make_config(method="byol"), tmp_path / "run", stop_at=2)
    pretrain(make_config(method="byol"), tmp_path / "run")
    assert seen == [(k, 6) for k in range(1, 7)]
