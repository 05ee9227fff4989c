"""study.train.resume: what a checkpoint must match to be resumed, compared as `comparable` has it."""
from study.train.resume import comparable


def test_sync_bn_is_compared_at_a_resume_only_for_a_run_on_several_gpus():
    """SyncBatchNorm runs on several CUDA devices only: on one GPU, or on CPU processes, `sync_bn` changes nothing,
    so a resume leaves it out of the comparison; on several GPUs it is compared."""
    def compared(devices, device_type):
        fingerprint = {"config": {"method": "simclr", "sync_bn": True}, "devices": devices, "device_type": device_type}
        return "sync_bn" in comparable(fingerprint)["config"]

    assert compared(2, "cuda")
    assert not compared(1, "cuda") and not compared(2, "cpu") and not compared(1, "cpu")
