"""The front: `python -m study` is the command, and every `--workers` takes only a count >= 1, refused by argparse
(exit 2) before any work."""
import pytest

from study.cli import main


@pytest.mark.parametrize("argv", [
    ["manifest", "verify", "x", "--files", "--workers", "0"],
    ["manifest", "materialize", "x", "--out", "o", "--workers", "-3"],
    ["submit", "g.yaml", "--cluster", "local", "--workers", "two"],
    ["quickstart", "--workers", "0"],
])
def test_every_workers_flag_takes_a_count_of_one_or_more(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument --workers: expected an integer >= 1, got {argv[-1]!r}" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["report", "g"], ["status", "g"], ["cancel", "g"],
                                     ["submit", "g", "--cluster", "local"], ["quickstart"]])
def test_a_second_workdir_is_refused_not_read_in_place_of_the_first(command, capsys):
    """`--workdir A --workdir B` (results of two clusters' workdirs, say) read B alone, as argparse keeps the last
    value: a report of A's jobs as missing, in silence. Refused before any work, saying how to bring them together."""
    with pytest.raises(SystemExit) as e:
        main([*command, "--workdir", "runs_a", "--workdir", "runs_b"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--workdir given twice (runs_a, runs_b): a command reads one workdir" in err, err
    assert "copy one's results/ and jobs/ into the other" in err, err


def test_python_dash_m_study_runs_the_command():
    """Where the `study` console script is not on PATH (no activated venv), `python -m study` is the same command."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "study", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: study" in out.stdout and "submit" in out.stdout, out.stderr
    bad = subprocess.run([sys.executable, "-m", "study", "plan", "no-such-grid.yaml"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "study: error: " in bad.stderr


def _modules_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after `study ARGV` (whatever its exit code)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\nfrom study.cli import main\ntry:\n    main(json.loads(sys.argv[1]))\n"
            "except SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


HEAVY = ("torchvision", "matplotlib", "seaborn", "study.train.loop", "study.evaluate.run", "study.report.build")


def test_commands_import_only_what_they_use(tmp_path):
    """`study --help` and `study status` import no torch, nor pandas (0.4 s) where the workdir holds results (a
    record's module once loaded the results table's); `study plan` imports torch (the method registry validates
    each pretraining section) but not pandas, torchvision, the training loop, the evaluation code or matplotlib,
    which took it from about 7 s to 3 s here (more on a login node's network filesystem)."""
    from pathlib import Path

    from study.grids import plan_grid
    from study.results import write_result

    grid = str(Path(__file__).resolve().parents[1] / "grids" / "data_quantity.yaml")
    job = plan_grid(grid).jobs[0]
    write_result(tmp_path, {"job_id": job.id, "stage": job.stage, "grid": "data_quantity", "axes": {},
                            "metrics": [{"metric": "loss", "value": 1.0}], "protocol": {"epochs": 1}})
    not_for_plan = {"pandas", *HEAVY}
    not_for_status = {"torch", *not_for_plan}
    for argv in (["--help"], ["status", grid, "--workdir", str(tmp_path)]):
        loaded = _modules_after(argv)
        assert not loaded & not_for_status, (argv, sorted(loaded & not_for_status))
    assert "study.results.record" in loaded, "status no longer reads the result: this test checks nothing"
    loaded = _modules_after(["plan", grid])
    assert "study.train.methods" in loaded, "the plan no longer validates methods: this test checks nothing"
    assert not loaded & not_for_plan, sorted(loaded & not_for_plan)


def test_a_command_without_its_action_prints_the_usage_and_exits_2(capsys):
    """`study` alone, or `study manifest` without an action: the usage on stdout and exit 2 (a script that forgot the
    command fails), not 0."""
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: study")
    assert main(["manifest"]) == 2
    assert capsys.readouterr().out.startswith("usage: study manifest")


def test_the_help_says_what_study_is_for_and_walks_a_study(capsys):
    """`study --help` showed the front's own docstring ("a thin front that hands each subcommand to its package"):
    it now names the paper and lists a study's commands in the order they are used."""
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "Cole et al." in out and "thin front" not in out
    steps = [out.index(f"  study {c} ") for c in ("manifest build", "plan", "submit", "status", "report")]
    assert steps == sorted(steps), out


def test_version_names_the_command_and_its_version(capsys):
    from study import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"study {__version__}\n"


def test_an_os_error_no_command_caught_names_its_file_and_exits_2(monkeypatch, capsys):
    """The front's last net: an OSError a command lets through (a full disk) is one line naming the file and the
    reason, exit 2, not a traceback."""
    import errno

    full_disk = OSError(errno.ENOSPC, "No space left on device", "/data/work/results/x.json")
    assert _main_raising(monkeypatch, full_disk) == 2
    assert capsys.readouterr().err == "study: error: /data/work/results/x.json: No space left on device\n"


def test_a_stop_by_sigterm_in_a_nested_main_is_said_once(monkeypatch, capsys):
    """The quickstart runs `study submit` through a nested `main`: the SystemExit(143) of a local submit stopped by
    `study cancel` passes through both, and its line is written once, by the inner one."""
    import argparse
    import signal

    import study.cli

    def stopped(args):
        raise SystemExit(128 + signal.SIGTERM)

    def nested(args):
        inner = argparse.ArgumentParser(prog="study")
        inner.set_defaults(func=stopped)
        monkeypatch.setattr(study.cli, "build_parser", lambda: inner)
        return main([])

    outer = argparse.ArgumentParser(prog="study")
    outer.set_defaults(func=nested)
    monkeypatch.setattr(study.cli, "build_parser", lambda: outer)
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 143
    assert capsys.readouterr().err == "study: stopped by SIGTERM\n"


def test_a_name_an_ascii_locale_cannot_write_says_the_locale_not_a_traceback(monkeypatch, capsys):
    """Under LC_ALL=C with PYTHONUTF8=0 stdout is ASCII: a class name with an accent (`study manifest show`) is one
    line naming the locale and the way out, exit 2; in a UTF-8 locale the same error is a bug: its traceback stays."""
    import argparse
    import locale

    import study.cli

    def show(args):
        raise UnicodeEncodeError("ascii", "cl ass \u00e4", 7, 8, "ordinal not in range(128)")

    parser = argparse.ArgumentParser(prog="study")
    parser.set_defaults(func=show)
    monkeypatch.setattr(study.cli, "build_parser", lambda: parser)
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "ANSI_X3.4-1968")
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "study: error: cannot write '\u00e4' as ascii (this locale's encoding is ANSI_X3.4-1968): run study in a "
        "UTF-8 locale (LC_ALL=C.UTF-8) or with PYTHONUTF8=1\n")
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "UTF-8")
    with pytest.raises(UnicodeEncodeError):
        main([])


def _commands(parser=None, prog="study"):
    """Every parser of the `study` command tree, with its command line: `study`, `study manifest build`."""
    import argparse

    from study.cli import build_parser

    parser = parser or build_parser()
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prog} {name}")


# the same concept, the same placeholder in every command's --help
METAVARS = {"--workdir": "DIR", "--out": "DIR", "--data": "DIR", "--manifests": "DIR", "--root": "DIR",
            "--fashion-mnist": "DIR", "--profile": "FILE", "--grid": "FILE", "--taxonomy": "FILE", "--workers": "N"}


def test_every_command_says_what_it_does_and_every_argument_is_explained():
    """`study X --help` opens with a line saying what X does (not only `study -h`'s list), and each of its
    arguments has a help text and the placeholder every other command uses for that flag."""
    import argparse

    for prog, parser in _commands():
        assert parser.description and not parser.description.startswith("`"), prog
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = action.option_strings[-1] if action.option_strings else action.dest
            assert action.help, f"{prog} {name}: no help text"
            if name in METAVARS:
                assert action.metavar == METAVARS[name], f"{prog} {name} {action.metavar}: expected {METAVARS[name]}"


# flags whose default is None yet means something a script needs to know
NONE_DEFAULTS_SAID = {("study manifest build", "--labeled-sizes"), ("study manifest export", "--subset"),
                      ("study manifest export", "--labeled"), ("study report", "--profile")}


def test_every_flag_with_a_default_says_it():
    """`study quickstart --scale`'s default (full), `study report --profile`'s (the built-in node, as status and
    cancel say), `manifest export`'s (every row) and `manifest build --labeled-sizes`'s (none, as --sizes says)
    were not in their --help: every flag that takes a value and has a default, or is listed above, names it."""
    import argparse

    unsaid = []
    for prog, parser in _commands():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.required or isinstance(
                    action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            name = action.option_strings[-1]
            if (action.default is not None or (prog, name) in NONE_DEFAULTS_SAID) and "default" not in action.help:
                unsaid.append(f"{prog} {name}")
    assert not unsaid, unsaid


def test_a_short_output_into_a_closed_pipe_exits_141_without_a_second_error(tmp_path):
    """`study plan g.yaml | head -0`: output shorter than stdout's buffer is flushed inside `main` (at interpreter
    exit it would fail again, "Exception ignored ... BrokenPipeError", exit 120), and stdout is pointed at
    /dev/null so that nothing is flushed into the pipe at exit."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    grid = Path(__file__).resolve().parent.parent / "grids" / "quickstart.yaml"
    argv = ["plan", str(grid), "--no-check", "--where", "stage=pretrain", "--where", "method=random"]  # 628 bytes
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as usual
    proc = subprocess.Popen([sys.executable, "-m", "study", *argv], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_a_closed_stderr_or_stdout_keeps_stdout_clean_and_is_no_traceback(tmp_path):
    """`study manifest build ... 2>&-` (a cron line): with stderr closed, Python's `print(..., file=sys.stderr)`
    wrote the progress lines to stdout, ahead of the result line a script reads; with stdout closed (`>&-`) a
    command's output was an AttributeError traceback, exit 1. Both now go to /dev/null."""
    import os
    import subprocess
    import sys

    from image_trees import write_quadrant_tree

    write_quadrant_tree(tmp_path / "tree", 2, seed=0)
    env = {**os.environ, "STUDY_MANIFESTS": str(tmp_path / "manifests")}
    study = [sys.executable, "-m", "study"]
    build = ["manifest", "build", "--dataset", "imagefolder", "--root", str(tmp_path / "tree"), "--split", "train",
             "--name", "toy"]
    closed = subprocess.run(["sh", "-c", '"$@" 2>&-', "sh", *study, *build], env=env, capture_output=True, text=True,
                            timeout=300)
    assert closed.returncode == 0 and closed.stdout.startswith("manifest toy: written"), closed
    assert len(closed.stdout.splitlines()) == 1, closed.stdout  # not the "[manifest] indexing ..." lines
    no_out = subprocess.run(["sh", "-c", '"$@" >&-', "sh", *study, "manifest", "list"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert no_out.returncode == 0 and no_out.stderr == "", no_out.stderr


def _main_raising(monkeypatch, error: BaseException) -> int:
    """`main([])` of a command that raises `error`."""
    import argparse

    import study.cli

    def raising(args):
        raise error

    parser = argparse.ArgumentParser(prog="study")
    parser.set_defaults(func=raising)
    monkeypatch.setattr(study.cli, "build_parser", lambda: parser)
    return main([])


def test_ctrl_c_exits_130_and_is_said_once(monkeypatch, capsys):
    """The quickstart re-raises a step's interrupt through its own `main`: the line is written by the first."""
    error = KeyboardInterrupt()
    assert _main_raising(monkeypatch, error) == 130 and _main_raising(monkeypatch, error) == 130
    assert capsys.readouterr().err == "study: interrupted\n"


def test_ctrl_c_while_the_commands_are_imported_is_said_without_a_traceback(monkeypatch, capsys):
    """The first moments of a command import its packages (pandas, torch): a Ctrl-C there is the same one line."""
    import study.cli

    def importing():
        raise KeyboardInterrupt

    monkeypatch.setattr(study.cli, "build_parser", importing)
    try:
        code = main(["status", "x"])
    except KeyboardInterrupt:  # escaped main: the user sees a traceback (and pytest would stop the whole run)
        pytest.fail("the Ctrl-C escaped main")
    assert code == 130
    assert capsys.readouterr().err == "study: interrupted\n"


def test_a_stop_by_sighup_is_said_and_an_os_error_without_a_file_gives_its_reason(monkeypatch, capsys):
    import errno
    import signal

    with pytest.raises(SystemExit):
        _main_raising(monkeypatch, SystemExit(128 + signal.SIGHUP))
    assert capsys.readouterr().err == "study: stopped by SIGHUP\n"
    assert _main_raising(monkeypatch, OSError(errno.ENOSPC, "No space left on device")) == 2
    assert capsys.readouterr().err == "study: error: No space left on device\n"


def test_a_permission_denied_on_another_users_file_names_its_owner_and_the_shared_workdir_remedy(
        tmp_path, monkeypatch, capsys):
    """A second user of a lab's workdir, refused a file the first made without group write: the owner, the mode and
    what opens it (umask 002, chmod g+rwX); on a file of one's own, the plain reason alone."""
    import errno
    import os
    import pwd

    from study.errors import group_name

    ledger = tmp_path / "ledgers" / "g.jsonl"
    ledger.parent.mkdir()
    ledger.write_text("")
    ledger.chmod(0o644)
    denied = PermissionError(errno.EACCES, "Permission denied", str(ledger))
    assert _main_raising(monkeypatch, denied) == 2
    assert capsys.readouterr().err == f"study: error: {ledger}: Permission denied\n"  # one's own file
    if os.geteuid() == 0:  # root's files name no owner (a system folder is no lab's workdir): another user's
        for path in (ledger, ledger.parent):
            os.chown(path, 4242, -1)
    uid = ledger.stat().st_uid
    owner = pwd.getpwuid(uid).pw_name if uid in {u.pw_uid for u in pwd.getpwall()} else f"uid {uid}"
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # as another user sees it
    assert _main_raising(monkeypatch, denied) == 2
    err = capsys.readouterr().err
    group = group_name(ledger.stat().st_gid)
    assert err.startswith(f"study: error: {ledger}: Permission denied; {ledger} belongs to {owner}, group {group} "
                          "(-rw-r--r--)"), err
    assert "umask 002" in err and f"chmod g+rwX {{}} +`, DIR the shared folder (here: {ledger.parent}, at least)" \
        in err, err
    gone = PermissionError(errno.EACCES, "Permission denied", str(ledger.parent / "new.lock"))  # the folder's
    assert _main_raising(monkeypatch, gone) == 2
    assert f"Permission denied; {ledger.parent} belongs to {owner}, group {group} (drwx" in capsys.readouterr().err
