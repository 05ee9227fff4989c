"""What the documentation tells a user to type or to read next exists: every flag a `study` command line in the docs
gives is one of that command's own, and every `FILE, "Section"` reference names a section of that file."""
import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/architecture.md", "docs/contributing.md", "docs/protocol.md", "docs/protocol-evaluation.md",
        "grids/README.md", "manifests/README.md", "reports/README.md", "benchmarks/README.md")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """`study plan`, `study manifest build`, ...: each command's parser by its command line less `study`."""
    from study.cli import build_parser

    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


def unknown_flags(text: str, parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """`study CMD [ACTION] ... --flag` in `text` (a shell line continued with `\\`, or a code span) whose flag CMD
    does not take; a command line ends at a backtick, `#`, `;`, `|`, `)` or the next `study `."""
    text = re.sub(r"\\\n\s*", " ", text)
    bad = []
    for line in text.splitlines():
        for segment in re.split(r"\bstudy ", line)[1:]:
            words = re.split(r"[`#;|)]", segment, maxsplit=1)[0].split()
            if not words or words[0] not in parsers:
                continue
            command = f"{words[0]} {words[1]}" if len(words) > 1 and f"{words[0]} {words[1]}" in parsers else words[0]
            known = {o for a in parsers[command]._actions for o in a.option_strings}
            bad += [f"study {command} {flag}" for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", " ".join(words))
                    if flag not in known]
    return bad


def test_every_flag_a_documented_study_command_line_gives_is_its_own():
    parsers = _parsers()
    bad = [f"{doc}: {b}" for doc in DOCS for b in unknown_flags((REPO / doc).read_text(), parsers)]
    assert bad == []


def test_a_misspelt_or_misplaced_flag_is_found():
    parsers = _parsers()
    assert unknown_flags("study plan g.yaml --workdir runs  # x --nope", parsers) == ["study plan --workdir"]
    assert unknown_flags("`study manifest build --dataset x \\\n   --size 50k`, `study submit --only a`", parsers) \
        == ["study manifest build --size"]
    assert unknown_flags("study manifest verify x --files --workers 2", parsers) == []


SECTION_REF = re.compile(r"`?((?:[\w.-]+/)*[\w.-]+\.md|README)`?,\s+\"([^\"]+)\"")


def headings(doc: Path) -> list[str]:
    """Its headings, and the lead of each paragraph (a section may be one: `Linear probe details (ours; ...`)."""
    lines = ["", *doc.read_text().splitlines()]
    return [re.sub(r"^#+\s*", "", line).strip() for before, line in zip(lines, lines[1:])
            if line.startswith("#") or (line.strip() and not before.strip())]


def unresolved_sections(source: str, text: str) -> list[str]:
    """Each `FILE, "Section"` in `text` (FILE relative to the repository, to docs/ for a bare protocol*.md, or
    `README` for README.md) whose FILE does not exist or holds no heading or paragraph that starts with Section."""
    text = re.sub(r"\s*\n\s*(?:#\s+)?", " ", text)  # a shell comment continued over lines too
    bad = []
    for name, section in SECTION_REF.findall(text):
        name = "README.md" if name == "README" else name
        candidates = [REPO / name, REPO / "docs" / name, REPO / Path(source).parent / name]
        doc = next((c for c in candidates if c.is_file()), None)
        if doc is None or not any(h.startswith(section) for h in headings(doc)):
            bad.append(f'{name}, "{section}"')
    return bad


def test_every_section_a_doc_refers_to_is_there():
    bad = [f"{doc}: {b}" for doc in DOCS for b in unresolved_sections(doc, (REPO / doc).read_text())]
    assert bad == []


def test_a_renamed_section_is_found():
    assert unresolved_sections("README.md", 'see grids/README.md, "Cost model", and protocol.md, "Augmentation"') == []
    assert unresolved_sections("README.md", '(grids/README.md,\n  "Costs")') == ['grids/README.md, "Costs"']
    assert unresolved_sections("README.md", 'nowhere.md, "Intro"') == ['nowhere.md, "Intro"']
