"""Grammar tests for every spec of the library, made from the Pygments lexer's tokens.

    python editors/vscode/test/library.py SPECS_DIR OUT_DIR

writes, for each `*.res` under SPECS_DIR, a vscode-tmgrammar-test case under OUT_DIR: the
spec's lines, each followed by one assertion per token that the project's Pygments lexer
(resdsl/tooling/lexer.py) gives a class, requiring the TextMate scope that class stands for. Running
vscode-tmgrammar-test on OUT_DIR then checks that the grammar highlights the whole library as
the lexer does (`make vscode`, and tests/unit/lsp/test_lsp.py where node is present).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String

from resdsl.tooling.lexer import ResLexer

HEADER = '# SYNTAX TEST "source.res" "{name}, tokens of the Pygments lexer"'


def scope(token, value: str) -> str | None:
    """The TextMate scope of the grammar for a Pygments token; None for plain text."""
    if token in Comment:
        return "comment.line.number-sign.res"
    if token is Keyword.Declaration:
        return f"keyword.declaration.{value}.res"
    if token is Keyword.Namespace:
        return "keyword.other.extends.res"
    if token is Keyword.Constant:
        return "constant.language.res"
    if token is Keyword:
        return "support.type.property-name.setting.res"
    if token is Name.Class:
        return "entity.name.type.network.res"
    if token is Name.Function:
        return "entity.name.function.stage.res"
    if token is Name.Attribute:
        return "variable.parameter.res"
    if token is Name.Builtin:
        return "support.constant.kind.res"
    if token in String:
        return "string.quoted.double.res"
    if token is Number.Float:
        return "constant.numeric.float.res"
    if token in Number:
        return "constant.numeric.size.res" if "x" in value else "constant.numeric.integer.res"
    if token is Operator:
        return "keyword.operator.res"
    if token is Punctuation:
        return {
            "{": "punctuation.section.braces.res",
            "}": "punctuation.section.braces.res",
            "(": "punctuation.section.parens.res",
            ")": "punctuation.section.parens.res",
        }.get(value, "punctuation.separator.res")
    return None


def test_case(text: str, name: str) -> str:
    """`text` with an assertion line under each of its lines' highlighted tokens."""
    asserted: dict[int, list[str]] = {}
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    for offset, token, value in ResLexer().get_tokens_unprocessed(text):
        found = scope(token, value)
        if found is None or not value.strip():
            continue
        line = next(i for i in range(len(starts) - 1) if starts[i] <= offset < starts[i + 1])
        column = offset - starts[line]
        width = len(value.rstrip("\n"))
        # A token in the first column is marked with `<-`: the `#` of the assertion is there.
        mark = "# <" + "-" * width if column == 0 else "#" + " " * (column - 1) + "^" * width
        asserted.setdefault(line, []).append(f"{mark} {found}")
    out = [HEADER.format(name=name)]
    for i, line in enumerate(text.split("\n")):
        out.append(line)
        out.extend(asserted.get(i, []))
    return "\n".join(out)


def main(specs: str, out: str) -> int:
    root, target = Path(specs), Path(out)
    count = 0
    for path in sorted(root.rglob("*.res")):
        relative = path.relative_to(root)
        case = target / relative
        case.parent.mkdir(parents=True, exist_ok=True)
        case.write_text(test_case(path.read_text(encoding="utf-8"), str(relative)), "utf-8")
        count += 1
    print(f"{count} grammar test cases in {target}")
    return 0 if count else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
