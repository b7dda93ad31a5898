r"""Turn the docstrings' plain-text maths into MathML, which browsers render natively.

The docstrings write equations the way code is written, e.g. ``m_t = beta1 * m_{t-1} + (1 - beta1) * d_t``.
This module reads that notation with a small recursive-descent parser and writes MathML Core:

=========================  ===========================================
text                       rendered as
=========================  ===========================================
``beta1``, ``lambda``      Greek letters, a trailing digit as subscript
``d_t``, ``theta_{t-1}``   subscripts (``{...}`` is itself parsed)
``beta2^t``                superscripts
``v_hat_t``, ``gbar_t``    accents (hat, bar); ``vmax_t`` is v with "max" above the subscript
``theta'_{t-1}``           a prime
``a / b``, ``sqrt(x)``     a fraction bar, a radical
``a * b``                  a centred dot (the code's ``*``)
``x if c else y``          cases with a brace; ``x if a > 0 else y if a < 0 else z``, three
``eta_plus``, ``eta_minus``  a plus or minus sign as the subscript
``\ge``                    the LaTeX commands in :data:`LATEX_SYMBOLS`
=========================  ===========================================

:func:`formula_to_mathml` raises :class:`MathSyntaxError` on text it cannot read; callers then
show the text as it is, so a new notation degrades to plain text instead of breaking a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eps": "ε", "eta": "η",
    "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "Delta": "Δ",
}
"""Names written out in the docstrings, and the letters they stand for."""

ACCENTS = {"hat": "ˆ", "bar": "¯"}
SIGN_SUBSCRIPTS = {"plus": "+", "minus": "−"}  # Rprop's eta_plus and eta_minus: η₊, η₋
LATEX_SYMBOLS = {"ge": "≥", "le": "≤", "ne": "≠", "cdot": "⋅", "times": "×", "to": "→", "infty": "∞"}
OPERATORS = {"-": "−", "*": "⋅", "!=": "≠", ">=": "≥", "<=": "≤", "<": "&lt;", ">": "&gt;", "=": "=", "+": "+"}
FUNCTIONS = ("sqrt", "max", "min", "exp", "log", "sign", "RMS", "lerp", "mean", "rowmean", "colmean", "outer", "norm",
             "dot", "abs", "sum")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?)
      | (?P<ident>[A-Za-z][A-Za-z0-9]*'?(?:_(?:\{[^{}]*\}|[A-Za-z0-9]+))*)
      | (?P<latex>\\[A-Za-z]+)
      | (?P<op>!=|>=|<=|[-+*/^=(),;<>])
    )""",
    re.VERBOSE,
)
_BASE_NAME = re.compile(r"^(?P<letters>[A-Za-z]+?)(?P<accent>bar|hat|max)?(?P<digits>\d*)$")
_WORD = re.compile(r"^\(?[A-Za-z]+\)?$")  # "(centered)", "or": prose between the parts of a formula


class MathSyntaxError(ValueError):
    """The text is not in the notation this module reads."""


def formula_to_mathml(text: str, display: bool = True) -> str:
    """One line of an equation as a ``<math>`` element.

    Parts separated by two or more spaces that are single words, such as ``(centered)`` or ``or``
    in ``sqrt(v_t - gbar_t * gbar_t)  (centered)  or  sqrt(v_t)``, are set as words.
    """
    pieces, maths = [], []  # maths: consecutive parts that are one formula ("a;  b")
    for part in re.split(r"\s{2,}", text.strip()) + [""]:
        is_word = bool(_WORD.match(part)) and not is_symbol(part.strip("()"))
        if (is_word or not part) and maths:
            pieces.append(_Parser(" ".join(maths)).parse_line())
            maths = []
        if is_word:
            pieces.append(f'<mspace width="0.6em"/><mtext>{escape(part)}</mtext><mspace width="0.6em"/>')
        elif part:
            maths.append(part)
    mode = ' display="block"' if display else ""
    return f"<math{mode}><mrow>{''.join(pieces)}</mrow></math>"


def identifier_to_mathml(name: str) -> str:
    """A single symbol such as ``beta_1`` or ``v_hat``, as a ``<math>`` element (raises if it is not one)."""
    parser = _Parser(name)
    node = parser.atom()
    if parser.peek() is not None:
        raise MathSyntaxError(f"not a single symbol: {name!r}")
    return f"<math>{node.xml()}</math>"


def is_symbol(word: str) -> bool:
    """``beta``, ``x``, ``gbar``, ``beta1``: a letter or Greek name, maybe with an accent or digits."""
    match = _BASE_NAME.match(word)
    return bool(match) and (match["letters"] in GREEK or len(match["letters"]) == 1)


# --- the expression tree: just enough structure to place fractions, scripts and parentheses ------


@dataclass
class _Node:
    markup: str

    def xml(self) -> str:
        return self.markup


@dataclass
class _Symbol(_Node):
    """A letter with optional subscript and superscript, kept apart so that ``^`` can add one."""

    subscript: str | None = None
    superscript: str | None = None

    def xml(self) -> str:
        if self.subscript and self.superscript:
            return f"<msubsup>{self.markup}{self.subscript}{self.superscript}</msubsup>"
        if self.subscript:
            return f"<msub>{self.markup}{self.subscript}</msub>"
        if self.superscript:
            return f"<msup>{self.markup}{self.superscript}</msup>"
        return self.markup


@dataclass
class _Parens(_Node):
    """``( inner )``; a fraction bar groups by itself, so a fraction can drop these."""

    inner: _Node | None = None

    def xml(self) -> str:
        if isinstance(self.inner, _Fraction):
            return self.inner.xml()
        return f"<mrow>{_paren('(', self.markup)}{self.markup}{_paren(')', self.markup)}</mrow>"


@dataclass
class _Fraction(_Node):
    pass


@dataclass
class _Product(_Node):
    """``left * right``, kept apart so that ``a/b * c / d`` can be set as a/b ⋅ c/d."""

    left: _Node | None = None
    right: _Node | None = None


def _paren(symbol: str, content: str) -> str:
    """A parenthesis that grows only around fractions and roots (without a math font, browsers
    draw stretched parentheses too tall around plain subscripts)."""
    stretchy = "true" if ("<mfrac" in content or "<msqrt" in content) else "false"
    return f'<mo stretchy="{stretchy}">{symbol}</mo>'


def _is_fraction(node: _Node) -> bool:
    return isinstance(node, _Fraction) or (isinstance(node, _Parens) and isinstance(node.inner, _Fraction))


def _unwrap(node: _Node) -> str:
    """A fraction's numerator or denominator: outer parentheses are redundant there."""
    return f"<mrow>{node.inner.xml()}</mrow>" if isinstance(node, _Parens) and node.inner else f"<mrow>{node.xml()}</mrow>"


class _Parser:
    """Grammar (lowest precedence first)::

        line        := statement (";" statement)*
        statement   := conditional (("=" | "!=" | "<" | ">" | "<=" | ">=") conditional)*
        conditional := sum ("if" condition "else" sum)*         (x if c else y if d else z: one row each)
        condition   := sum (("<" | ">" | "<=" | ">=" | "!=") sum)?
        sum         := product (("+" | "-") product)*
        product     := unary (("*" | "/") unary)*
        unary       := "-" unary | power
        power       := atom ("^" atom)?
        atom        := number | symbol | "(" conditional ")" | function "(" conditional ("," conditional)* ")"
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise MathSyntaxError(f"cannot read {text[position:]!r} in {text!r}")
            kind = match.lastgroup
            self.tokens.append((kind, match[kind]))
            position = match.end()
        self.index = 0

    # token helpers
    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise MathSyntaxError(f"unexpected end of {self.text!r}")
        self.index += 1
        return token

    def accept(self, *values: str) -> str | None:
        token = self.peek()
        if token and token[0] in ("op", "ident") and token[1] in values:
            self.index += 1
            return token[1]
        return None

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise MathSyntaxError(f"expected {value!r} in {self.text!r}")

    # grammar
    def parse_line(self) -> str:
        statements = [self.statement()]
        while self.accept(";"):
            statements.append(self.statement())
        if self.peek() is not None:
            raise MathSyntaxError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return '<mo separator="true">;</mo><mspace width="1.2em"/>'.join(statements)

    def statement(self) -> str:
        parts = [self.conditional().xml()]
        while True:
            if (relation := self.accept("=", "!=", "<", ">", "<=", ">=")) is not None:
                parts.append(f"<mo>{OPERATORS[relation]}</mo>")
            elif self.peek() and self.peek()[0] == "latex":  # t \ge 1
                parts.append(self.atom().xml())
            else:
                break
            parts.append(self.conditional().xml())
        return "".join(parts)

    def conditional(self) -> _Node:
        value = self.sum()
        if not self.accept("if"):
            return value
        rows = []
        while True:  # Python's chain: a if c else b if d else e, one row per value
            condition = self.condition()
            self.expect("else")
            rows.append(f"<mtr><mtd><mrow>{value.xml()}</mrow></mtd><mtd><mrow><mtext>if&#xA0;</mtext>{condition}</mrow></mtd></mtr>")
            value = self.sum()
            if not self.accept("if"):
                break
        rows.append(f"<mtr><mtd><mrow>{value.xml()}</mrow></mtd><mtd><mtext>otherwise</mtext></mtd></mtr>")
        return _Node(f'<mrow><mo>{{</mo><mtable columnalign="left left">{"".join(rows)}</mtable></mrow>')

    def condition(self) -> str:
        """``maximize``, or a comparison such as ``s_t > 0``."""
        condition = self.sum().xml()
        if (relation := self.accept("<", ">", "<=", ">=", "!=")) is not None:
            condition += f"<mo>{OPERATORS[relation]}</mo>{self.sum().xml()}"
        return condition

    def sum(self) -> _Node:
        first = self.product()
        if self.peek() not in (("op", "+"), ("op", "-")):
            return first  # keep a lone fraction a _Fraction, so parentheses around it can go
        terms = [first.xml()]
        while (op := self.accept("+", "-")) is not None:
            terms.append(f"<mo>{OPERATORS[op]}</mo>{self.product().xml()}")
        return _Node("".join(terms))

    def product(self) -> _Node:
        left = self.unary()
        while (op := self.accept("*", "/")) is not None:
            right = self.unary()
            if op == "*":
                left = _Product(f"<mrow>{left.xml()}<mo>⋅</mo>{right.xml()}</mrow>", left, right)
            elif isinstance(left, _Product) and _is_fraction(left.left):
                # (eta / (1 - beta1^t)) * m_t / s_t: a fraction times a fraction, not a fraction
                # inside a fraction (the same value; the code, not the maths, fixes the rounding order)
                quotient = f"<mfrac>{_unwrap(left.right)}{_unwrap(right)}</mfrac>"
                left = _Node(f"<mrow>{left.left.xml()}<mo>⋅</mo>{quotient}</mrow>")
            else:
                left = _Fraction(f"<mfrac>{_unwrap(left)}{_unwrap(right)}</mfrac>")
        return left

    def unary(self) -> _Node:
        if self.accept("-"):
            return _Node(f'<mrow><mo form="prefix">−</mo>{self.unary().xml()}</mrow>')
        return self.power()

    def power(self) -> _Node:
        base = self.atom()
        if not self.accept("^"):
            return base
        exponent = self.atom().xml()
        if isinstance(base, _Symbol) and base.superscript is None:
            return _Symbol(base.markup, base.subscript, exponent)
        return _Node(f"<msup><mrow>{base.xml()}</mrow><mrow>{exponent}</mrow></msup>")

    def atom(self) -> _Node:
        kind, value = self.take()
        if kind == "number":
            return _Node(f"<mn>{value}</mn>")
        if kind == "latex":
            symbol = LATEX_SYMBOLS.get(value[1:])
            if symbol is None:
                raise MathSyntaxError(f"unknown command {value!r}")
            return _Node(f"<mo>{symbol}</mo>")
        if kind == "op" and value == "(":
            inner = self.conditional()
            self.expect(")")
            return _Parens(inner.xml(), inner)
        if kind == "ident" and value in FUNCTIONS and self.accept("("):
            arguments = [self.conditional().xml()]
            while self.accept(","):
                arguments.append(self.conditional().xml())
            self.expect(")")
            if value == "sqrt" and len(arguments) == 1:
                return _Node(f"<msqrt>{arguments[0]}</msqrt>")
            inside = "<mo>,</mo>".join(arguments)
            return _Node(f"<mrow><mi>{value}</mi>{_paren('(', inside)}{inside}{_paren(')', inside)}</mrow>")
        if kind == "ident":
            return _symbol(value)
        raise MathSyntaxError(f"unexpected {value!r} in {self.text!r}")


def _symbol(name: str) -> _Symbol:
    """``theta'_{t-1}`` -> θ′ with subscript t−1; ``v_hat_t`` -> v̂ with subscript t; ``beta2`` -> β₂."""
    base, *subscripts = name.split("_", 1)
    rest = subscripts[0] if subscripts else ""
    prime = base.endswith("'")
    base = base.rstrip("'")
    accent = None
    if rest.split("_")[0] in ACCENTS:  # v_hat_t
        accent, _, rest = rest.partition("_")
    match = _BASE_NAME.match(base)
    if not match:
        raise MathSyntaxError(f"cannot read the symbol {name!r}")
    letters, digits = match["letters"], match["digits"]
    accent = accent or match["accent"]
    letter = GREEK.get(letters, letters)
    core = f"<mi>{escape(letter)}</mi>"
    superscript = None
    if accent in ACCENTS:
        core = f'<mover accent="true">{core}<mo stretchy="false">{ACCENTS[accent]}</mo></mover>'
    elif accent == "max":
        superscript = "<mi>max</mi>"
    if prime:
        superscript = "<mo>′</mo>"
    subscript_parts = []
    if digits:
        subscript_parts.append(f"<mn>{digits}</mn>")
    if rest in SIGN_SUBSCRIPTS:
        subscript_parts.append(f"<mo>{SIGN_SUBSCRIPTS[rest]}</mo>")
    elif rest:
        text = rest[1:-1] if rest.startswith("{") else rest
        subscript_parts.append(_Parser(text).statement())
    subscript = f"<mrow>{'<mo>,</mo>'.join(subscript_parts)}</mrow>" if subscript_parts else None
    return _Symbol(core, subscript, superscript)
