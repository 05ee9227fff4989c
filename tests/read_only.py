"""A folder read-only to this process, as a lab's shared manifests or datasets are to its users."""
import os
from pathlib import Path


def read_only(folder: Path, monkeypatch, request) -> Path:
    """`folder` and its files without write permission until the test ends; where the test runs as root, whom modes
    do not stop, `os.access` also says the folder cannot be written (as a read-only filesystem makes it say to
    root)."""
    folder = Path(folder)
    modes = {p: p.stat().st_mode for p in (folder, *folder.iterdir())}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    request.addfinalizer(lambda: [p.chmod(mode) for p, mode in modes.items()])
    if os.geteuid() == 0:
        access, resolved = os.access, folder.resolve()

        def refusing(path, mode, *args, **kwargs):
            return not (mode & os.W_OK and Path(path).resolve() == resolved) and access(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", refusing)
    return folder
