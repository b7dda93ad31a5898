"""The README stays one screen long and true; the docs cover every optimizer.

The documentation site itself (docs/) is built, with its examples run, by ``.ci/run``
(``sphinx-build -W -b html`` and ``-b doctest``); these checks need no Sphinx.
"""

import contextlib
import io
import re
from pathlib import Path

import fastopt

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

MAIN_COMMAND = "pip install -e . && python -m fastopt tour"
TEST_COMMAND = 'pip install -e ".[test]" && python -m pytest'  # .ci/run greps for it, too
MAX_BYTES = 12 * 1024


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_readme_is_at_most_12_kb():
    size = README.stat().st_size
    assert size <= MAX_BYTES, f"README.md is {size} bytes; keep it <= {MAX_BYTES} (move detail to docs/)"


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    assert title.startswith("# ")
    assert rest.lstrip("\n").startswith("```"), "the first thing after the title is the commands"
    language, code = fenced_blocks(text)[0]
    assert language == "bash"
    assert code.splitlines() == [MAIN_COMMAND, TEST_COMMAND]


def test_readme_example_runs_and_prints_what_it_says():
    text = README.read_text(encoding="utf-8")
    examples = [code for language, code in fenced_blocks(text) if language == "python"]
    assert len(examples) == 1, "one Python example in the README"
    (code,) = examples
    assert len(code.splitlines()) <= 12, "the README's example stays about ten lines"
    expected = re.findall(r"print\(.*#\s*(.+)$", code, flags=re.MULTILINE)  # "# True" after print
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    assert out.getvalue().split() == expected


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_optimizer_has_a_reference_page():
    index = (DOCS / "reference" / "index.md").read_text(encoding="utf-8")
    for cls in fastopt.OPTIMIZERS.values():
        page = DOCS / "reference" / f"{cls.name}.rst"
        assert page.is_file(), f"docs/reference/{cls.name}.rst is missing"
        source = page.read_text(encoding="utf-8")
        assert f".. automodule:: fastopt.{cls.name}\n" in source
        assert f".. autoclass:: fastopt.{cls.__name__}\n" in source
        assert re.search(rf"^{cls.name}$", index, flags=re.MULTILINE), f"{cls.name} is not in the reference toctree"
