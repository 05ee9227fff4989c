"""study.atomic: whole files or none, with the permissions of a plainly written file."""
import os
import stat
import tempfile
import time

import pytest

from study import atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_file_gets_the_umask_mode_not_mkstemps_private_one(tmp_path, monkeypatch, umask, mode):
    """0o022: a shared cluster's usual umask (group and others may read); 0o027 keeps others out, 0o002 lets the
    group write."""
    monkeypatch.setattr(atomic, "_UMASK", umask)
    atomic.write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == mode


def test_the_umask_is_read_as_the_process_has_it():
    mask = os.umask(0o027)
    try:
        assert atomic._read_umask() == 0o027
    finally:
        os.umask(mask)


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "b.json"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A checkpoint is written by torch.save, which does not sync: after a node crash the new name could point at
    data never written, and the only checkpoint would be lost."""
    synced, real = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    with atomic.atomic_path(tmp_path / "checkpoint.pt") as tmp:
        tmp.write_bytes(b"weights")
        written = str(tmp)
    assert synced == [written, str(tmp_path)]
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"weights"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path, stop):
    """Ctrl-C (KeyboardInterrupt), or a stop signal's handler calling sys.exit (SystemExit), in the middle of a
    write: no `.<name>.*.tmp` is left beside the target (no later write removes it)."""
    with pytest.raises(stop):
        with atomic.atomic_path(tmp_path / "checkpoint.pt") as tmp:
            tmp.write_bytes(b"half")
            raise stop()
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_is_a_hidden_file_beside_the_target(tmp_path):
    """Beside it, so that the rename is atomic (one filesystem: a rename across two would copy, and a reader could
    see half a file); hidden and named after it, so that readers of the folder (results/*.json) skip it."""
    target = tmp_path / "results" / "job.json"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".job.json.") and tmp.name.endswith(".tmp")
        tmp.write_text("{}")
    assert [p.name for p in target.parent.iterdir()] == ["job.json"]


def test_a_file_named_near_the_longest_name_is_written_through_a_temporary_that_fits(tmp_path):
    """A name of 250 bytes (83 CJK characters, a source image's name kept by materialize) is a valid file name, but
    `.<name>.<random>.tmp` is 14 bytes longer than a file system takes (255): the temporary keeps the extension and
    as much of the stem as fits; a killed writer's is still found as that file's."""
    target = tmp_path / ("\u732b" * 82 + ".png")  # 246 + 4 bytes
    assert len(target.name.encode()) == 250
    with atomic.atomic_path(target) as tmp:
        assert tmp.name.endswith(".png." + tmp.name.split(".")[-2] + ".tmp") and len(tmp.name.encode()) <= 255
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == [target.name]
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:  # a writer stopped mid-write ...
        tmp.write_bytes(b"y")
        leftover = tmp.with_name(tmp.name.rsplit(".", 2)[0] + ".abcd1234.tmp")  # ... and one killed (no cleanup)
        leftover.write_bytes(b"z")
        raise RuntimeError
    assert atomic.remove_temporaries(target) == 1 and [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("raw", [b"caf\xe9.json", b"\xe9" * 250 + b".png"])
def test_a_file_named_in_bytes_that_are_not_utf8_is_written_as_before(tmp_path, raw):
    """A name in Latin-1 (`--name caf\xe9` typed in a Latin-1 terminal: a lone surrogate in Python) is a file name
    Linux takes: written through its temporary, short or cut to fit, whose leftovers are found as that file's (the
    name's length in bytes read it as UTF-8, which such a name is not: UnicodeEncodeError)."""
    target = tmp_path / os.fsdecode(raw)
    atomic.write_bytes(target, b"x")
    assert os.listdir(os.fsencode(tmp_path)) == [raw] and target.read_bytes() == b"x"
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:  # a writer killed mid-write (no cleanup)
        assert len(os.fsencode(tmp.name)) <= 255
        tmp.with_name(tmp.name.rsplit(".", 2)[0] + ".abcd1234.tmp").write_bytes(b"z")
        raise RuntimeError
    assert atomic.remove_temporaries(target) == 1 and os.listdir(os.fsencode(tmp_path)) == [raw]


def test_remove_temporaries_removes_the_ones_a_killed_writer_left_of_that_file_only(tmp_path):
    """What a writer killed mid-write (SIGKILL: no cleanup runs) leaves is its mkstemp temporary; only those of the
    file named go, not another file's whose name begins the same (manifest `x.parquet.y`'s beside `x`'s rows)."""
    target = tmp_path / "x.parquet"
    fd, _ = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=tmp_path)  # as atomic_path makes it
    os.close(fd)
    others = [".x.parquet.y.parquet.abcd1234.tmp", ".y.parquet.abcd1234.tmp", "x.parquet", ".x.parquet.lock",
              ".x.parquet.abcd1234.tmp~"]
    for name in others:
        (tmp_path / name).write_text("")
    assert atomic.remove_temporaries(target) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert atomic.remove_temporaries(tmp_path / "absent" / "x.parquet") == 0


def test_only_temporaries_older_than_asked_are_removed(tmp_path):
    """Without the writer's lock only a temporary older than any live writer takes is surely a killed writer's: a
    fresh one may be a live writer's, and a hidden file that is no temporary is never one."""
    old = time.time() - 3600
    names = [".x.parquet.abcd1234.tmp", ".x.parquet.efgh5678.tmp", ".y.json.abcd1234.tmp", ".x.parquet.lock"]
    for name in names:
        (tmp_path / name).write_text("")
    for name in (".x.parquet.abcd1234.tmp", ".y.json.abcd1234.tmp", ".x.parquet.lock"):
        os.utime(tmp_path / name, (old, old))
    assert atomic.remove_temporaries(tmp_path / "x.parquet", older_than_s=600) == 1
    assert atomic.remove_folder_temporaries(tmp_path, older_than_s=600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.parquet.efgh5678.tmp", ".x.parquet.lock"]


def test_a_write_failing_on_a_full_disk_names_the_file_and_keeps_the_one_before(tmp_path, monkeypatch):
    """A full disk fails a write with an OSError that names no file (`[Errno 28] No space left on device`); the
    error is raised naming the target (not the temporary, removed), whose earlier version is left whole: a job log
    or `study: error:` line then says which file, so which disk."""
    import errno
    from pathlib import Path

    target = tmp_path / "results" / "job.json"
    atomic.write_text(target, "old")
    real = Path.write_bytes

    def full_disk(self, data):
        real(self, data[:3])  # part of it written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError) as e:
        atomic.write_text(target, "new and longer")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert str(target) in str(e.value)
    monkeypatch.undo()
    assert target.read_text() == "old" and os.listdir(target.parent) == ["job.json"]


def test_a_write_failure_says_a_full_disk_and_the_space_left(tmp_path):
    """What a caller's message adds to a failed write: the error, the space left where it wrote, and a full disk as
    the cause where the error chain holds one (torch.save's own RuntimeError hides it, so that one is named as a
    likely cause)."""
    import errno

    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    except RuntimeError as e:
        chained = e
    said = atomic.write_failure(tmp_path / "x.pt", chained)
    assert said.startswith("RuntimeError: [enforce fail") and "GB free there now: the disk is full" in said
    said = atomic.write_failure(tmp_path / "x.pt", RuntimeError("unexpected pos 704 vs 598"))
    assert said.endswith("GB free there now: a full disk or quota fails writes so")
    assert atomic.write_failure(tmp_path / "x.pt", ValueError("bad")).endswith("GB free there now")


def test_a_write_failure_gives_the_first_line_the_cause_and_a_quota_and_the_gigabytes_free(tmp_path, monkeypatch):
    """One line for a message: the error's first line ("no message" for none); the chain followed through an
    explicit cause (`raise ... from`) over the error being handled; a quota (EDQUOT) as a full disk; the free space
    in GB."""
    import errno
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10e9, 5e9, 5e9))
    free = "5.00 GB free there now"
    assert atomic.write_failure(tmp_path / "x.pt", ValueError("first\nsecond")) == f"ValueError: first; {free}"
    assert atomic.write_failure(tmp_path / "x.pt", ValueError()) == f"ValueError: no message; {free}"
    try:
        try:
            raise KeyError("handled meanwhile")
        except KeyError:
            raise RuntimeError("unexpected pos 1 vs 2") from OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    except RuntimeError as e:
        assert atomic.write_failure(tmp_path / "x.pt", e).endswith("free there now: the disk is full or over quota")


def test_a_write_error_naming_the_temporary_is_raised_naming_the_target(tmp_path):
    """An error raised with the temporary's name (an `open` of it) would name a file that no longer exists."""
    import errno

    target = tmp_path / "job.json"
    with pytest.raises(OSError) as e:
        with atomic.atomic_path(target) as tmp:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(tmp))
    assert e.value.filename == str(target) and os.listdir(tmp_path) == []


def test_temporaries_are_known_by_mkstemps_eight_characters_and_the_files_name_as_written(tmp_path):
    """Only what atomic_path makes (`.<name>.` + mkstemp's 8 lowercase letters, digits or `_` + `.tmp`) is removed:
    not a user's hidden file of another spelling, nor that of a name differing where the target's has a dot."""
    kept = [".a.json.ABCDEFGH.tmp", ".a.json.abc.tmp", ".aXjson.abcd1234.tmp", "a.json.abcd1234.tmp"]
    for name in kept + [".a.json.abcd_234.tmp"]:
        (tmp_path / name).write_text("")
    old = time.time() - 3600
    for p in tmp_path.iterdir():
        os.utime(p, (old, old))
    assert atomic.remove_temporaries(tmp_path / "a.json") == 1
    assert atomic.remove_folder_temporaries(tmp_path, older_than_s=600) == 1  # the one of `.aXjson`
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(kept) - {".aXjson.abcd1234.tmp"})


def test_json_is_written_with_sorted_keys_a_final_newline_and_text_as_utf8(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"b": 1, "a": "é"})
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == '{\n  "a": "\\u00e9",\n  "b": 1\n}\n'
    atomic.write_text(tmp_path / "b.txt", "é")
    assert (tmp_path / "b.txt").read_bytes() == "é".encode("utf-8")


def test_a_temporary_that_cannot_be_made_is_raised_naming_the_target(tmp_path, monkeypatch):
    """A folder that is read-only or full refuses mkstemp's temporary: the error names the file meant, not the random
    `.<name>.xxxxxxxx.tmp` the user never asked for (simulated by monkeypatching mkstemp to raise EROFS naming the
    temporary, no read-only mount in a test)."""
    import errno
    import os
    import tempfile

    import pytest

    from study.atomic import write_text

    def refused(prefix, suffix, dir):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, f"{prefix}abcd1234{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(OSError) as raised:
        write_text(tmp_path / "index.html", "x")
    assert raised.value.filename == str(tmp_path / "index.html") and raised.value.errno == errno.EROFS
    assert list(tmp_path.iterdir()) == []


def test_a_write_refused_for_its_permissions_names_whose_folder_refused_it_not_the_space_left(tmp_path, monkeypatch):
    """A feature cache's folder another user of a shared workdir made without group write (umask 022): the warning
    says whose folder it is and how it opens, not the space left (`the space left there unknown`, of a folder not
    there, read as a full disk's)."""
    import errno

    from other_user import another_users

    theirs = another_users(tmp_path / "features" / "sha", monkeypatch)
    denied = PermissionError(errno.EACCES, "Permission denied", str(theirs / "key"))
    said = atomic.write_failure(theirs / "key" / "all.pt", denied)
    assert said.startswith(f"PermissionError: [Errno 13] Permission denied: '{theirs / 'key'}'; {theirs} belongs to ")
    assert "free there" not in said and "space left" not in said and "umask 002" in said, said
    try:
        raise RuntimeError("torch.save's own") from denied
    except RuntimeError as e:
        said = atomic.write_failure(theirs / "key" / "all.pt", e)
    assert said.startswith("RuntimeError: torch.save's own; ") and f"{theirs} belongs to " in said, said
