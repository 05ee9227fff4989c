"""The `study` command: a thin front that hands each subcommand to its package.

Each package with commands has a `cli.py` exposing `register(subparsers)`, which adds its parsers and sets
`func(args) -> int | None` on each. A StudyError anywhere becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import codecs
import importlib
import locale
import os
import signal
import sys

from study import __version__
from study.errors import UTF8_LOCALE_ADVICE, StudyError, not_yours, os_reason

INTERRUPTED = 130  # the exit code after Ctrl-C, as a shell gives it
BROKEN_PIPE = 141  # after the reader of our output went away (SIGPIPE's, as a shell gives it)
COMMAND_MODULES = (
    "study.manifests.cli",  # study manifest ...
    "study.grids.cli",  # study plan
    "study.train.cli",  # study encoder import
    "study.launch.cli",  # study submit | status | cancel
    "study.report.cli",  # study report
    "study.quickstart.cli",  # study quickstart
)


DESCRIPTION = ("Rerun and extend Cole et al., \"When Does Contrastive Visual Representation Learning Work?\" "
               "(CVPR 2022):\ndataset manifests, grids of pretraining and evaluation jobs on Slurm or this machine, "
               "and the paper's figures.")
EPILOG = """a study, start to end:
  study manifest build ...             freeze each dataset's nested subsets (manifests/README.md)
  study plan grids/data_quantity.yaml  list its jobs, what they need and what they cost
  study submit grids/data_quantity.yaml --cluster slurm   (or --cluster local: on this machine)
  study status grids/data_quantity.yaml
  study report grids/data_quantity.yaml
`study quickstart` runs a miniature study here (Fashion-MNIST and MNIST digits, CPU); `study COMMAND -h` for more."""


def count_arg(text: str) -> int:
    """The argparse type of a count flag (`--workers N`): an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


class OneWorkdir(argparse.Action):
    """`--workdir DIR`, which a command takes once: a second one is a usage error (exit 2), not the last one read in
    silence (`study report GRID --workdir A --workdir B` would report B's results alone, A's jobs missing)."""

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, self.dest, None)
        if earlier is not None and earlier != self.default:
            parser.error(f"{option_string} given twice ({earlier}, {values}): a command reads one workdir. To bring "
                         "the results of two workdirs into one, copy one's results/ and jobs/ into the other first "
                         "(grids/README.md, \"The schema\": \"One workdir, one set of results\")")
        setattr(namespace, self.dest, values)


def command_with_actions(subparsers, name: str, help: str, description: str) -> argparse._SubParsersAction:
    """The parser of `study NAME ACTION ...` (without an action: its usage, exit 2); returns the subparsers its
    actions are added to (`action_parser`)."""
    p = subparsers.add_parser(name, help=help, description=description)
    sub = p.add_subparsers(dest=f"{name}_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    return sub


def action_parser(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """An action's parser, whose --help opens with the line its command's -h lists it by."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"study {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def said(e: BaseException) -> bool:
    """Whether `e`'s line was written already (by a nested `main`: the quickstart's steps); marks it as written."""
    before = getattr(e, "study_said", False)
    e.study_said = True  # type: ignore[attr-defined]
    return before


def open_closed_streams() -> None:
    """Point a closed stdout or stderr (`study ... 2>&-`) at /dev/null, as its file descriptor too (the workers a
    local submit starts inherit it): with `sys.stderr` None, `print(..., file=sys.stderr)` writes to stdout, into the
    JSON or CSV a script reads there; with `sys.stdout` None, a command's output is a traceback."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", closefd=False, buffering=1, errors="backslashreplace"))


def main(argv: list[str] | None = None) -> int:
    open_closed_streams()
    try:  # the parser too: its commands' imports take a moment a Ctrl-C may fall in
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is met below and not at interpreter exit
        return code
    except StudyError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        if not said(e):
            print("study: interrupted", file=sys.stderr)
        return INTERRUPTED
    except SystemExit as e:  # a local submit's stop on SIGTERM (`study cancel`) or SIGHUP (its terminal closed)
        if isinstance(e.code, int) and e.code - 128 in (signal.SIGTERM, signal.SIGHUP) and not said(e):
            try:
                print(f"study: stopped by {signal.Signals(e.code - 128).name}", file=sys.stderr)
            except OSError:  # the terminal is gone
                pass
        raise
    except BrokenPipeError:  # the reader of our output went away (`study manifest export x | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return BROKEN_PIPE
    except UnicodeEncodeError as e:  # a non-ASCII name under an ASCII locale (LC_ALL=C with PYTHONUTF8=0)
        if codecs.lookup(locale.getpreferredencoding(False)).name == "utf-8":
            raise  # not the locale's doing: a bug, with its traceback
        print(f"study: error: cannot write {e.object[e.start:e.end]!r} as {e.encoding} (this locale's encoding is "
              f"{locale.getpreferredencoding(False)}): {UTF8_LOCALE_ADVICE}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be made, a full disk: the file and the reason, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"study: error: {where}{os_reason(e)}{not_yours(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
