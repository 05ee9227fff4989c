"""Each loss against a formula-by-formula reference written with loops (float64, 1e-6)."""
import math

import torch

from study.train.losses import byol_loss, byol_symmetric_loss, infonce, nt_xent


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def nt_xent_reference(z1, z2, t):
    z = [_unit(r) for r in z1.tolist() + z2.tolist()]
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        p = i + n if i < n else i - n
        denom = sum(math.exp(_dot(z[i], z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(_dot(z[i], z[p]) / t) / denom)
    return total / n2


def infonce_reference(q, k, queue, t):
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        qi, ki = _unit(qi), _unit(ki)
        pos = math.exp(_dot(qi, ki) / t)
        neg = sum(math.exp(_dot(qi, nj) / t) for nj in queue.tolist())
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def byol_reference(p, z):
    total = 0.0
    for pi, zi in zip(p.tolist(), z.tolist()):
        pi, zi = _unit(pi), _unit(zi)
        total += sum((a - b) ** 2 for a, b in zip(pi, zi))
    return total / p.shape[0]


def test_nt_xent_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    for n, d, t in [(4, 8, 0.1), (7, 3, 0.5), (1, 5, 1.0)]:
        z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
        z2 = torch.randn(n, d, generator=g, dtype=torch.float64)
        got = nt_xent(z1, z2, t)
        assert got.dtype == torch.float64
        assert abs(got.item() - nt_xent_reference(z1, z2, t)) < 1e-6


def nt_xent_rows_reference(z1, z2, t, start, k):
    """The loop reference's l_i averaged over the rows of pairs start..start+k-1 (both views) only."""
    z = [_unit(r) for r in z1.tolist() + z2.tolist()]
    n = len(z) // 2
    rows = list(range(start, start + k)) + list(range(n + start, n + start + k))
    total = 0.0
    for i in rows:
        p = i + n if i < n else i - n
        denom = sum(math.exp(_dot(z[i], z[j]) / t) for j in range(2 * n) if j != i)
        total += -math.log(math.exp(_dot(z[i], z[p]) / t) / denom)
    return total / len(rows)


def test_nt_xent_of_a_ranks_pairs_matches_the_loop_reference_and_the_shares_average_to_the_whole():
    """One rank's share (its pairs against every row): the loop reference over its rows; equal shares average to the
    whole batch's loss."""
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    shares = [nt_xent(z1, z2, 0.2, (start, 2)) for start in (0, 2, 4)]
    for start, got in zip((0, 2, 4), shares):
        assert abs(got.item() - nt_xent_rows_reference(z1, z2, 0.2, start, 2)) < 1e-9
    assert abs(sum(x.item() for x in shares) / 3 - nt_xent(z1, z2, 0.2).item()) < 1e-12
    assert abs(shares[0].item() - shares[1].item()) > 1e-3  # the shares are not all the whole loss


def test_nt_xent_positives_are_the_two_views_of_one_image():
    # view 2 of image i equals view 1 of image i; the images are orthogonal: the right pairing gives the
    # lowest loss, and any other pairing of z2 gives a much higher one
    z1 = torch.eye(6, dtype=torch.float64)
    right = nt_xent(z1, z1.clone(), 0.1).item()
    shuffled = nt_xent(z1, z1[[1, 2, 3, 4, 5, 0]], 0.1).item()
    assert right < 0.01
    assert shuffled > right + 5
    # gradient pulls z1[0] toward its own positive, z2[0]
    a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 5, dtype=torch.float64)
    nt_xent(a, b, 0.2).backward()
    step = a - 0.01 * a.grad
    cos = lambda x, y: torch.nn.functional.cosine_similarity(x, y, dim=0)
    assert cos(step[0], b[0]) > cos(a[0].detach(), b[0])


def test_infonce_matches_loop_reference():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(5, 6, generator=g, dtype=torch.float64)
    k = torch.randn(5, 6, generator=g, dtype=torch.float64)
    queue = torch.nn.functional.normalize(torch.randn(9, 6, generator=g, dtype=torch.float64), dim=1)
    for t in (0.07, 0.2, 1.0):
        assert abs(infonce(q, k, queue, t).item() - infonce_reference(q, k, queue, t)) < 1e-6


def test_infonce_sends_no_gradient_to_keys():
    q = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    queue = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    infonce(q, k, queue, 0.2).backward()
    assert q.grad is not None and k.grad is None and queue.grad is None


def test_byol_losses_match_loop_reference():
    g = torch.Generator().manual_seed(2)
    p1, p2, z1, z2 = (torch.randn(6, 7, generator=g, dtype=torch.float64) for _ in range(4))
    assert abs(byol_loss(p1, z2).item() - byol_reference(p1, z2)) < 1e-6
    expect = byol_reference(p1, z2) + byol_reference(p2, z1)
    assert abs(byol_symmetric_loss(p1, p2, z1, z2).item() - expect) < 1e-6
    p, z = p1.clone().requires_grad_(True), z1.clone().requires_grad_(True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None  # the target projection is detached


def test_losses_run_in_float32_under_bf16_autocast():
    """Under autocast the similarity products would run in bf16 (cosines off by ~4e-3); each loss runs in
    float32 on its inputs cast up, so it equals the float32 loss of the same bf16 values, its tensors passed by
    position or by keyword."""
    g = torch.Generator().manual_seed(3)
    a, b, queue = (torch.randn(n, 16, generator=g).to(torch.bfloat16) for n in (8, 8, 32))
    queue = torch.nn.functional.normalize(queue.float(), dim=1).to(torch.bfloat16)
    for loss, kwargs in ((nt_xent, {"z1": a, "z2": b, "temperature": 0.1}),
                         (infonce, {"q": a, "k": b, "queue": queue, "temperature": 0.2}),
                         (byol_loss, {"p": a, "z": b})):
        # the loss's own body on the float32 values, outside any autocast: not through the wrapper under test
        floats = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        want = loss.__wrapped__(**floats)
        assert float(loss(**floats)) == float(want), loss.__name__  # no autocast around: none turned on either
        for args, kw in ((tuple(kwargs.values()), {}), ((), kwargs)):  # by position, then by keyword
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = loss(*args, **kw)
            assert got.dtype == torch.float32, loss.__name__
            assert abs(float(got) - float(want)) < 1e-6, (loss.__name__, float(got), float(want))


def test_in_fp32_casts_only_floating_tensors_and_turns_autocast_off_on_their_device(monkeypatch):
    """An integer tensor (an index, labels) is passed as it is, not cast to float; autocast is turned off on the
    device of the first tensor argument (a CUDA loss under CUDA autocast), whatever comes before it."""
    from study.train.losses.precision import in_fp32

    seen, real = [], torch.autocast

    def spy(device_type, *args, **kwargs):
        seen.append(device_type)
        return real("cpu", *args, **kwargs)

    got = in_fp32(lambda t, idx, x: (idx.dtype, x.dtype))(0.5, torch.tensor([1, 2]), x=torch.ones(2).half())
    assert got == (torch.int64, torch.float32)
    monkeypatch.setattr(torch, "autocast", spy)
    in_fp32(lambda t, x: x)(0.5, torch.empty(2, device="meta"))
    assert seen == ["meta"]
