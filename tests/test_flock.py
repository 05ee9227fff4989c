"""study.flock.no_flock: the errors of a filesystem without flock, not those of a taken lock or a bad call."""
import errno

import pytest

from study.flock import no_flock


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL])
def test_a_filesystem_without_flock(code):
    assert no_flock(OSError(code, "x"))


@pytest.mark.parametrize("code", [errno.EWOULDBLOCK, errno.EBADF, errno.EINTR, None])
def test_other_errors(code):
    assert not no_flock(OSError(code, "x") if code is not None else OSError("x"))
