"""study.train.resume: what a checkpoint must match to be resumed, compared as `comparable` has it."""
import torch

from study.train.resume import Sessions, comparable, resume_warnings


def test_sync_bn_is_compared_at_a_resume_only_for_a_run_on_several_gpus():
    """SyncBatchNorm runs on several CUDA devices only: on one GPU, or on CPU processes, `sync_bn` changes nothing,
    so a resume leaves it out of the comparison; on several GPUs it is compared."""
    def compared(devices, device_type):
        fingerprint = {"config": {"method": "simclr", "sync_bn": True}, "devices": devices, "device_type": device_type}
        return "sync_bn" in comparable(fingerprint)["config"]

    assert compared(2, "cuda")
    assert not compared(1, "cuda") and not compared(2, "cpu") and not compared(1, "cpu")


def test_an_older_checkpoint_holding_settings_its_method_never_reads_compares_as_a_newer_one():
    """A supervised run's checkpoint written when every run's config held SimCLR's `head` and `temperature` resumes
    under a config that holds neither (PretrainConfig.to_dict now leaves them out); SimCLR's head is compared."""
    older = {"method": "supervised", "lr": 0.1, "temperature": 0.2, "head": [2048, 128], "head_output_bn": False}
    assert comparable({"config": older}) == comparable({"config": {"method": "supervised", "lr": 0.1}})
    simclr = {**older, "method": "simclr"}
    assert comparable({"config": simclr}) != comparable({"config": {**simclr, "head": [512, 128]}})


def test_a_session_back_on_the_first_thread_count_still_warns_that_the_run_mixed_counts():
    """Stopped and resumed twice on a CPU, with 1, then 2, then 1 torch thread (`--workers 2`, 1, 2): the last session
    has the count the run began with, yet its weights are an uninterrupted run's of neither; its log says so, as the
    second session's did. One count throughout, or a GPU, says nothing."""
    def said(threads, device="cpu"):
        return [w for w in resume_warnings(Sessions(threads=threads, versions=["v"] * len(threads)),
                                           torch.device(device)) if "torch threads" in w]

    (second,) = said([1, 2])
    assert second.startswith("WARNING: this session has 2 torch threads, the run began with 1: "), second
    (third,) = said([1, 2, 1])
    assert third.startswith("WARNING: this session has 1 torch threads, as the run began, but its sessions had 1, 2, "
                            "1: on a CPU the float sums"), third
    assert said([2, 2, 2]) == [] and said([1, 2, 1], "meta") == []
