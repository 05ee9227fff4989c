"""torch's TF32 switches (study/train/tf32.py), read for a result record and set around the linear probes' fits.
They are process flags that can be read and set without a GPU: no tensor is made on a CUDA device here."""
import pytest
import torch

from device import tf32_matmul_switch
from study.train.tf32 import tf32_in_use, tf32_matmuls

MATMUL = torch.backends.cuda.matmul
SWITCH, ON, OFF = tf32_matmul_switch()


@pytest.mark.parametrize("before", [ON, OFF])
def test_tf32_matmuls_switch_on_cuda_only_and_are_restored(before, tf32_switch):
    """`tf32_matmuls(device, on)`: on a CUDA device torch's TF32 matmul switch is `on` within and as before after,
    also when the work within raises; on a CPU it is never touched."""
    setattr(MATMUL, SWITCH, before)
    for on in (False, True):
        with tf32_matmuls(torch.device("cuda"), on):
            assert (getattr(MATMUL, SWITCH) == ON) is on
        assert getattr(MATMUL, SWITCH) == before
        with pytest.raises(RuntimeError, match="inside"), tf32_matmuls(torch.device("cuda", 0), on):
            raise RuntimeError("inside")
        assert getattr(MATMUL, SWITCH) == before
        for device in ("cpu", "meta"):  # off CUDA: any other device
            with tf32_matmuls(torch.device(device), on):
                assert getattr(MATMUL, SWITCH) == before


def test_the_tf32_switches_a_cuda_run_records_are_torchs():
    """`precision: fp32` on a GPU convolves in TF32 where cuDNN's switch is on (torch's default): a record says so
    (reading the switches touches no GPU); off CUDA there is nothing to say."""
    assert tf32_in_use(torch.device("cpu")) is None and tf32_in_use(torch.device("meta")) is None
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:  # torch's switches are properties of its backend modules: set and restored here, not by monkeypatch
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
        assert tf32_in_use(torch.device("cuda", 0)) == {"convolutions": True, "matmul": False}
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = False, True
        assert tf32_in_use(torch.device("cuda", 0)) == {"convolutions": False, "matmul": True}
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_the_tf32_switches_are_read_after_torchs_newer_api_set_them():
    """torch 2.9 and later refuse to read `allow_tf32` once the newer `fp32_precision` of cuBLAS set "tf32" (a mix
    of the two APIs): the record then reads the newer one (and `tf32_matmuls`, which sets it, works)."""
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):  # torch < 2.9: one API, the test above
        assert tf32_in_use(torch.device("cuda", 0))["matmul"] == bool(matmul.allow_tf32)
        return
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"
        assert tf32_in_use(torch.device("cuda", 0))["matmul"] is True
        with tf32_matmuls(torch.device("cuda", 0), False):
            assert tf32_in_use(torch.device("cuda", 0))["matmul"] is False
        assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = before
