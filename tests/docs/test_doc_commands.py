"""Every ``lastgang`` command shown in the documentation runs, so the docs cannot rot.

Each Markdown file (``README.md`` and ``docs/*.md``) is one test. Its fenced ```` ```sh ````
blocks run in order in a fresh temporary folder that holds copies of the repository's
``examples/`` and ``tests/data/``, with ``LASTGANG_DB`` pointing at a new store there. A line
that starts with ``lastgang`` is run (in-process, through the same Typer app as the console
script); other lines (``make demo``, comments) are shown to readers only. A command that exits
with another code than expected fails the test with its file, line and output.

A page steers its blocks with HTML comments on the line(s) right before a fence (invisible
when the page is rendered):

- ``<!-- doc-test: skip -->``: the next block is not run (say why in the text: hardware,
  a server that keeps running, ...);
- ``<!-- doc-test: exit N -->``: every command of the next block must exit with ``N`` (a block
  that shows an error);
- ``<!-- doc-test: setup lastgang ... -->``: a command run before the next block, e.g. to
  create a store that a page takes for granted (repeatable);
- ``<!-- doc-test: file NAME -->``: the next fenced block (any language: TOML, CSV) is written
  to ``NAME`` in the folder, so a page that shows a file and then uses it is run as shown.

``lastgang serve`` and ``lastgang listen`` keep running until stopped; of them only
``--help`` is run. ``LASTGANG_PASSWORD`` is set, so ``lastgang user add`` does not ask.
``lastgang demo`` runs once per distinct command line and test session; later pages get a copy
of its output folder (the demo is deterministic).
"""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lastgang.cli import app
from lastgang.cli import commands as _commands  # noqa: F401  (registers the commands)

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LONG_RUNNING = {"serve", "listen"}

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
_DIRECTIVE = re.compile(r"^<!--\s*doc-test:\s*(\w+)\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    """A fenced block of a page with the directives before it."""

    line: int  # 1-based line of the opening fence
    language: str
    text: str
    skip: bool = False
    exit_code: int = 0
    setup: list[str] = field(default_factory=list)
    file: str | None = None


@dataclass(frozen=True)
class Command:
    line: int
    text: str


def parse_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a page, each with the ``doc-test`` directives right before it."""
    blocks: list[Block] = []
    pending: dict[str, list[str]] = {}
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        directive = _DIRECTIVE.match(raw.strip())
        if directive:
            pending.setdefault(directive.group(1), []).append(directive.group(2))
            i += 1
            continue
        fence = _FENCE.match(raw)
        if not fence:
            if raw.strip():
                pending = {}  # directives stick to the very next block only
            i += 1
            continue
        marker, language = fence.group(1), fence.group(2)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].startswith(marker):
            body.append(lines[j])
            j += 1
        unknown = set(pending) - {"skip", "exit", "setup", "file"}
        if unknown:
            raise ValueError(f"line {i + 1}: unknown doc-test directive(s) {sorted(unknown)}")
        blocks.append(
            Block(
                line=i + 1,
                language=language,
                text="\n".join(body) + "\n",
                skip="skip" in pending,
                exit_code=int(pending["exit"][-1]) if "exit" in pending else 0,
                setup=pending.get("setup", []),
                file=pending["file"][-1] if "file" in pending else None,
            )
        )
        pending = {}
        i = j + 1
    return blocks


def commands(block: Block) -> Iterator[Command]:
    """The ``lastgang`` commands of an ``sh`` block (continued lines joined)."""
    lines = block.text.splitlines()
    k = 0
    while k < len(lines):
        start = k
        text = lines[k]
        while text.rstrip().endswith("\\") and k + 1 < len(lines):
            k += 1
            text = text.rstrip()[:-1] + " " + lines[k].strip()
        k += 1
        words = shlex.split(text, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words = words[1:]  # VAR=value prefixes: shown for readers, the test sets its own
        if words and words[0] == "lastgang":
            yield Command(block.line + 1 + start, text.strip())


_runner = CliRunner()
_demo_cache: dict[tuple[str, ...], Path] = {}


def _argv(text: str) -> list[str]:
    words = shlex.split(text, comments=True)
    env: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if env:
        raise ValueError(f"{text!r}: environment prefixes are not supported in docs")
    if any(w in ("|", ">", ">>", "<", "&&", ";") for w in words):
        raise ValueError(f"{text!r}: pipes, redirections and chains are not supported in docs")
    out: list[str] = []
    for word in words[1:]:
        matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
        out.extend(matches or [word])
    return out


def _demo_out(argv: list[str]) -> Path:
    if "--out" in argv:
        return Path(argv[argv.index("--out") + 1])
    return Path("demo-output")


def run(text: str, where: str, expected: int, cwd: Path, cache: Path) -> None:
    """Run one documented command in ``cwd`` and check its exit code."""
    argv = _argv(text)
    if argv and argv[0] in LONG_RUNNING:
        argv = [argv[0], "--help"]
    key = tuple(argv)
    if argv and argv[0] == "demo" and key in _demo_cache and expected == 0:
        target = cwd / _demo_out(argv)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(_demo_cache[key], target)
        return
    result = _runner.invoke(app, argv, catch_exceptions=True)
    if result.exit_code != expected:
        detail = result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            detail += f"\n{type(result.exception).__name__}: {result.exception}"
        pytest.fail(
            f"{where}: `{text}` exited with {result.exit_code}, expected {expected}\n{detail}",
            pytrace=False,
        )
    if argv and argv[0] == "demo" and expected == 0:
        saved = cache / f"demo-{len(_demo_cache)}"
        shutil.copytree(cwd / _demo_out(argv), saved)
        _demo_cache[key] = saved


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-cache")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_command_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_cache: Path
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "tests" / "data", tmp_path / "tests" / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LASTGANG_DB", str(tmp_path / "lastgang.duckdb"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LASTGANG_PASSWORD", "correct-horse-battery-staple")
    name = page.relative_to(ROOT)
    for block in parse_blocks(page.read_text(encoding="utf-8")):
        if block.file is not None:
            target = tmp_path / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        if block.language != "sh" or block.skip:
            continue
        for setup in block.setup:
            run(setup, f"{name}:{block.line} (setup)", 0, tmp_path, demo_cache)
        for command in commands(block):
            run(command.text, f"{name}:{command.line}", block.exit_code, tmp_path, demo_cache)


def test_index_links_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)", index))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, f"docs/index.md does not link {sorted(pages - linked)}"


def test_directives_steer_the_next_block_only() -> None:
    page = (
        "Text.\n\n<!-- doc-test: exit 1 -->\n<!-- doc-test: setup lastgang demo --days 1 -->\n"
        "```sh\nlastgang check bad.toml  # shows the problems\nmake demo\n```\n\n"
        '<!-- doc-test: file site.toml -->\n```toml\n[site]\nid = "x"\n```\n\n'
        "```sh\nlastgang import --site x \\\n    a.csv b.csv\n```\n"
        "<!-- doc-test: skip -->\n\n```sh\nlastgang listen --serial /dev/ttyUSB0\n```\n"
    )
    first, toml, plain, skipped = parse_blocks(page)
    assert (first.exit_code, first.setup, first.line) == (1, ["lastgang demo --days 1"], 5)
    assert [c.text for c in commands(first)] == ["lastgang check bad.toml  # shows the problems"]
    assert toml.file == "site.toml" and toml.text == '[site]\nid = "x"\n'
    assert (plain.exit_code, plain.setup, plain.skip) == (0, [], False)
    assert [(c.line, c.text) for c in commands(plain)] == [
        (17, "lastgang import --site x  a.csv b.csv")
    ]
    assert skipped.skip
