"""A folder as another user's, as this process sees it: for the hints a shared workdir's refusals give."""
import os


def another_users(folder, monkeypatch):
    """`folder` (made, with its parents) owned by uid 4242 where the test runs as root, and this process's uid made
    another than its owner's; returned."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, 4242, -1)
    monkeypatch.setattr(os, "getuid", lambda: folder.stat().st_uid + 1)
    return folder
