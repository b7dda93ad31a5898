"""`python -m fastopt show`: equations and the three implementations, in a terminal/pipe and as HTML.

The expectations are computed from the package's files with plain regular expressions, not with
the parser under test: the tags are the ``# (k)`` comments in the kernels, the equations the
``(k)`` lines of each folder's docstring.
"""

import os
import re
import subprocess
import sys
from importlib import resources

import pytest

from fastopt import BACKENDS, OPTIMIZERS, cli

FILES = {"reference": "reference.py", "numba": "_numba.py", "cython": "_cython.pyx"}
TAG = re.compile(r"\((\d+[a-z]?)\)")


def source_tags(optimizer: str, backend: str) -> list[str]:
    """The equation tags of a kernel file, from its ``# (k)`` comments, in order (AdamW's kernels
    are Adam's)."""
    package = f"fastopt.{OPTIMIZERS[optimizer].kernel}"
    text = resources.files(package).joinpath(FILES[backend]).read_text()
    return re.findall(r"#\s*\((\d+[a-z]?)\)", text)


def docstring_tags(optimizer: str) -> list[str]:
    package = OPTIMIZERS[optimizer].__module__
    text = resources.files(package).joinpath("__init__.py").read_text()
    return re.findall(r"^\s+\((\d+[a-z]?)\)\s{2,}", text, flags=re.MULTILINE)


def show_text(capsys, *argv) -> str:
    assert cli.main(["show", *argv]) == 0
    return capsys.readouterr().out


def code_columns(out: str) -> list[list[str]]:
    """The text under the three backend headers, cut into columns at the headers' positions."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if all(f"{b}  fastopt/" in line for b in BACKENDS))
    starts = [lines[header].index(f"{b}  fastopt/") for b in BACKENDS]
    bounds = list(zip(starts, [*starts[1:], None]))
    return [[line[a:b] for line in lines[header + 1 :]] for a, b in bounds]


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_text_shows_every_tag_in_all_three_columns(capsys, optimizer):
    out = show_text(capsys, optimizer.lower(), "--width", "200")
    assert "\x1b[" not in out  # captured output is not a terminal: no colour codes
    for tag in docstring_tags(optimizer):  # the equations are printed above the code
        assert f"({tag})" in out
    columns = code_columns(out)
    for tag in set(source_tags(optimizer, "reference")):
        for backend, column in zip(BACKENDS, columns):
            assert f"({tag})" in "\n".join(column), (optimizer, backend, tag)
    # the first line tagged (k) in the reference starts on the same screen line in every column
    for tag in dict.fromkeys(source_tags(optimizer, "reference")):
        rows = [next((i for i, text in enumerate(column) if f"({tag})" in text), None) for column in columns]
        if all(tag in source_tags(optimizer, b) for b in BACKENDS):
            assert len(set(rows)) == 1, (optimizer, tag, rows)


def test_names_are_case_insensitive(capsys):
    assert "AdamW" in show_text(capsys, "ADAMW", "--width", "150")
    assert "RMSprop" in show_text(capsys, "rmsprop", "--width", "150")


def test_columns_environment_variable_is_honoured(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "170")
    lines = show_text(capsys, "sgd").splitlines()
    assert max(map(len, lines)) == 170
    monkeypatch.setenv("COLUMNS", "90")  # too narrow for three columns: one backend after another
    out = show_text(capsys, "sgd")
    assert max(map(len, out.splitlines())) <= 90
    assert all(f"{b}  fastopt/sgd/" in out for b in BACKENDS)


def test_unknown_optimizer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["show", "shampoo"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'shampoo'" in err
    assert all(name in err for name in OPTIMIZERS)


def assert_self_contained(html: str) -> None:
    for match in re.finditer(r"https?://", html):
        assert html[: match.start()].endswith('<a href="'), html[match.start() - 60 : match.end() + 30]
    for loader in ("<link", "<script src", "<img", "@import", "url("):
        assert loader not in html


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_html_page(tmp_path, capsys, optimizer):
    page = tmp_path / "page.html"
    assert cli.main(["show", optimizer, "--html", str(page)]) == 0
    html = page.read_text()
    assert_self_contained(html)
    assert str(tmp_path) not in html  # no machine paths in the page
    for backend in BACKENDS:
        assert f'<span class="backend">{backend}</span>' in html
    for tag in docstring_tags(optimizer):
        assert f'id="eq-{tag}"' in html
    assert html.count("<math") >= len(docstring_tags(optimizer))
    assert 'class="unparsed"' not in html  # every equation was understood and set as MathML
    for tag in set(source_tags(optimizer, "reference")):
        assert f'data-eq="{tag}"' in html
    assert "<h2>Symbols</h2>" in html or optimizer == "AdamW"  # AdamW refers to Adam's symbols
    assert "<h2>References</h2>" in html


def test_html_all_writes_an_index(tmp_path, capsys):
    folder = tmp_path / "pages"
    assert cli.main(["show", "all", "--html", str(folder)]) == 0
    index = (folder / "index.html").read_text()
    assert_self_contained(index)
    for name in OPTIMIZERS:
        page = f"{name.lower()}.html"
        assert f'href="{page}"' in index
        assert (folder / page).is_file()
    assert 'href="index.html"' in (folder / "adam.html").read_text()


def test_works_when_the_compiled_module_cannot_be_imported(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "fastopt.adam._cython", None)  # `import` now raises ImportError
    out = show_text(capsys, "adam", "--width", "200")
    assert "cython  fastopt/adam/_cython.pyx" in out and "nogil" in out
    assert cli.main(["show", "adam", "--html", str(tmp_path / "adam.html")]) == 0
    assert "nogil" in (tmp_path / "adam.html").read_text()
    assert sys.modules["fastopt.adam._cython"] is None  # shown from the .pyx, never imported


def test_pipe_has_no_colours_and_a_readable_width():
    result = subprocess.run(
        [sys.executable, "-m", "fastopt", "show", "rmsprop"],
        capture_output=True, text=True, check=True, timeout=120,
        env={key: value for key, value in os.environ.items() if key != "COLUMNS"},
    )
    assert "\x1b[" not in result.stdout
    assert max(map(len, result.stdout.splitlines())) == 160  # not rich's 80: three columns fit


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_80_columns_keep_tags_and_notes_in_their_columns(capsys, optimizer):
    out = show_text(capsys, optimizer.lower(), "--width", "80")
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    start = next(i for i, line in enumerate(lines) if line.startswith("Equations, from"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    block = lines[start + 1 : end]
    assert all(line.startswith("  ") for line in block), block  # nothing wraps back to column 0
    tags = [m.group(1) for line in block for m in [re.match(r"^  \((\d+[a-z]?)\) ", line)] if m]
    assert tags == docstring_tags(optimizer)  # every tag in the margin, in order
    formula_starts = {len(re.match(r"^  \(\d+[a-z]?\)\s+", line).group(0)) for line in block if re.match(r"^  \(\d", line)}
    assert len(formula_starts) == 1  # every formula starts in the same column, after the margin
    notes = [line for line in block if line.lstrip().startswith("#")]
    assert len({len(line) - len(line.lstrip()) for line in notes}) <= 1, notes  # notes start in one column


def test_flags_are_code_not_maths(tmp_path, capsys):
    """``eps_inside_sqrt`` is an argument name: set as maths it read "epsilon, subscript inside sqrt"."""
    from fastopt.cli.show._html import option_names

    assert {"eps_inside_sqrt", "eps_outside_max", "eps_hat", "lr_in_momentum"} <= option_names()
    folder = tmp_path / "pages"
    assert cli.main(["show", "all", "--html", str(folder)]) == 0
    for name in ("rmsprop", "adagrad", "adamax", "adam"):
        html = (folder / f"{name}.html").read_text()
        assert not re.search(r"<msub><mi>ε</mi><mrow><msub><mi>(inside|outside|hat)", html), name
        assert "<mi>inside</mi>" not in html and "<mi>outside</mi>" not in html
    assert "<code>eps_inside_sqrt</code>" in (folder / "rmsprop.html").read_text()
    assert "<code>eps_outside_max</code>" in (folder / "adamax.html").read_text()


def test_adam_prose_names_the_step_size_of_equation_7():
    from fastopt.cli.show.model import load_view

    view = load_view("Adam")
    seven = next(e for e in view.math.equations if e.tag == "7")
    alpha = seven.lines[0].note  # "alpha_t = eta * sqrt(1 - beta2^t) / (1 - beta1^t)"
    prose = resources.files("fastopt.adam").joinpath("__init__.py").read_text()
    assert alpha.startswith("alpha_t = ") and alpha in prose.replace("``", "").replace("\n", " ")
    assert "the step size ``eta / (1 - beta1^t)``" not in prose  # contradicted (7): no sqrt(1 - beta2^t)


@pytest.mark.parametrize(("optimizer", "method", "line"), [
    ("Adam", "step_scalars", "bias_correction1 = 1 - beta1**t"),
    ("AdamW", "step_scalars", "step_size = lr * bias_correction2**0.5 / bias_correction1"),
    ("RAdam", "step_scalars", "rho_t, rect = rectification(beta2, t)"),
    ("RMSprop", "group_scalars", "cast(1.0 - group[\"rho\"])"),
    ("SGD", "scalars", "cast(1.0 - group[\"dampening\"])"),
])
def test_the_scalars_the_kernels_get_are_shown_where_they_are_formed(capsys, tmp_path, optimizer, method, line):
    """Bias corrections and step sizes are computed once per step, outside the kernels: show prints
    the method that forms them, from the optimizer's algorithm, before the three kernels."""
    out = show_text(capsys, optimizer.lower(), "--width", "200")
    assert f"def {method}(" in out and line in out
    assert out.index(line) < out.index("reference  fastopt/")
    page = tmp_path / "page.html"
    assert cli.main(["show", optimizer.lower(), "--html", str(page)]) == 0
    html = page.read_text()
    scalars = html[html.index('<section id="scalars">'):html.index('<section id="code">')]
    assert method in scalars and "float64" in scalars


def test_chained_conditions_comparisons_and_sign_subscripts_are_maths():
    """Rprop's notation: ``a if s > 0 else b if s < 0 else c`` is one brace with three rows whose
    conditions are comparisons; ``eta_plus`` and ``eta_minus`` are eta with a + or − below;
    ``Delta`` is the capital letter; ``min``, ``max`` and ``sign`` are functions."""
    from fastopt.cli.show._mathml import formula_to_mathml

    cases = formula_to_mathml("f_t = eta_plus if s_t > 0 else eta_minus if s_t < 0 else 1")
    assert cases.count("<mtr>") == 3 and cases.count("<mtext>if&#xA0;</mtext>") == 2
    assert "<mo>&gt;</mo><mn>0</mn>" in cases and "<mo>&lt;</mo><mn>0</mn>" in cases
    assert "<msub><mi>η</mi><mrow><mo>+</mo></mrow></msub>" in cases
    assert "<msub><mi>η</mi><mrow><mo>−</mo></mrow></msub>" in cases
    clamp = formula_to_mathml("Delta_t = min(max(Delta_{t-1} * f_t, Delta_min), Delta_max)")
    assert "<mi>Δ</mi>" in clamp and "<mi>min</mi>" in clamp and "<mi>max</mi>" in clamp
    # the two-row form reads as before
    two = formula_to_mathml("d_t = -g_t if maximize else g_t")
    assert two.count("<mtr>") == 2 and "<mtext>if&#xA0;</mtext><mi>maximize</mi>" in two
