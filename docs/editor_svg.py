"""Draw docs/editor.svg: a spec as an editor shows it with `resdsl lsp`.

The colours are the project's Pygments lexer (resdsl/tooling/lexer.py) under Pygments' `one-dark`
style; the diagnostic (with its quick fix) and the inlay hints are what the language server
(:class:`resdsl.lsp.server.Specs`) answers for the spec, drawn over it as an editor draws them.
Every token sits on a fixed character grid, so the drawing does not depend on the font's widths.

    .venv/bin/python docs/editor_svg.py        # rewrites docs/editor.svg
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

from lsprotocol import types as lsp
from pygments.styles import get_style_by_name

from resdsl.lsp.server import Specs
from resdsl.tooling.lexer import ResLexer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "editor.svg"

NAME = "se_resnet50.res"
SPEC = """\
# ResNet-50 with squeeze-excitation, for 10 classes.
network se_resnet50 {
  input      3x224x224
  classes    10
  stem       imagenet
  block      bottleneck(expansion: 4, stride_on: 3x3)
  attention  se(reduction: 16)
  activaton  silu

  stage layer1: 3 x 64
  stage layer2: 4 x 128 / 2
  stage layer3: 6 x 256 / 2
  stage layer4: 3 x 512 / 2
}
"""

FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
SANS = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
SIZE = 14  # font size, px
CHAR = 8.4  # the grid's column width: 0.6 em, a monospace font's advance
LINE = 22  # line height
GUTTER = 48  # line numbers
TOP = 40  # the title bar
PAD = 16
ERROR = "#F14C4C"
HINT_TEXT, HINT_BACK = "#9DA5B4", "#3A3F4B"


def analysis() -> tuple[list[lsp.Diagnostic], list[lsp.InlayHint], list[lsp.CodeAction]]:
    """What the language server says about SPEC (positions in characters)."""
    specs = Specs(encoding="utf-32")
    uri = f"file:///work/{NAME}"
    document = specs.update(uri, SPEC, 1)
    hints = specs.inlay_hints(uri)
    context = lsp.CodeActionContext(diagnostics=document.diagnostics)
    actions = specs.code_actions(uri, document.diagnostics[0].range, context)
    return document.diagnostics, hints, actions


def _x(column: float) -> float:
    return GUTTER + PAD + column * CHAR


def _squiggle(x0: float, x1: float, y: float) -> str:
    """A wavy underline from x0 to x1 at y."""
    step, points = 3.0, [f"M{x0:.1f},{y:.1f}"]
    x, up = x0, True
    while x < x1:
        x = min(x + step, x1)
        points.append(f"L{x:.1f},{y - 2 if up else y + 1:.1f}")
        up = not up
    return f'<path d="{" ".join(points)}" fill="none" stroke="{ERROR}" stroke-width="1.2"/>'


def render() -> str:
    style = get_style_by_name("one-dark")
    diagnostics, hints, actions = analysis()
    (diagnostic,) = diagnostics
    lines = SPEC.rstrip("\n").split("\n")
    message, _, help_text = diagnostic.message.partition("\nhelp: ")
    box_lines = [
        (f"error[{diagnostic.code}]: {message}", ERROR, True),
        (f"help: {help_text}", "#ABB2BF", False),
        (f"quick fix ({actions[0].title.lower()}) · resdsl", "#7F848E", False),
    ]
    box_height = len(box_lines) * 20 + 14
    error_line = diagnostic.range.start.line
    hint_at = {h.position.line: h for h in hints}

    def y_of(line: int) -> float:
        """The baseline of source line `line` (the message box sits under the error's line)."""
        return TOP + PAD + (line + 1) * LINE - 6 + (box_height + 6 if line > error_line else 0)

    width = max(len(line) for line in lines) + 16
    svg_width = int(_x(width) + PAD)
    svg_height = int(y_of(len(lines) - 1) + PAD + 8)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{svg_width}" height="{svg_height}" '
        f'viewBox="0 0 {svg_width} {svg_height}" role="img" '
        f'aria-label="{NAME} in an editor with resdsl lsp: a diagnostic and inlay hints">',
        f'<rect width="{svg_width}" height="{svg_height}" rx="8" fill="{style.background_color}"/>',
        f'<rect width="{svg_width}" height="{TOP - 8}" rx="8" fill="#21252B"/>',
        f'<rect y="{TOP - 16}" width="{svg_width}" height="8" fill="#21252B"/>',
    ]
    for i, color in enumerate(("#FF5F56", "#FFBD2E", "#27C93F")):
        out.append(f'<circle cx="{18 + i * 18}" cy="16" r="5.5" fill="{color}"/>')
    out.append(
        f'<text x="{svg_width / 2:.0f}" y="21" fill="#9DA5B4" font-family="{SANS}" '
        f'font-size="12.5" text-anchor="middle">{NAME}</text>'
    )
    out.append(f'<g font-family="{FONT}" font-size="{SIZE}" xml:space="preserve">')
    for i in range(len(lines)):
        color = "#ABB2BF" if i == error_line else "#495162"
        out.append(
            f'<text x="{GUTTER - 4}" y="{y_of(i):.0f}" fill="{color}" '
            f'text-anchor="end">{i + 1}</text>'
        )
    # The code: one <text> a token, at its column.
    line, column = 0, 0
    for token, value in ResLexer().get_tokens(SPEC):
        for k, part in enumerate(value.split("\n")):
            if k:
                line, column = line + 1, 0
            if part.strip() and line < len(lines):
                found = style.style_for_token(token)
                extra = ' font-weight="bold"' if found["bold"] else ""
                extra += ' font-style="italic"' if found["italic"] else ""
                out.append(
                    f'<text x="{_x(column):.1f}" y="{y_of(line):.0f}" '
                    f'fill="#{found["color"] or "ABB2BF"}"{extra}>{escape(part)}</text>'
                )
            column += len(part)
    # Inlay hints at the ends of stage lines.
    for line_number, hint in sorted(hint_at.items()):
        x = _x(hint.position.character + 1)
        text = hint.label if isinstance(hint.label, str) else "".join(p.value for p in hint.label)
        y = y_of(line_number)
        out.append(
            f'<rect x="{x - 3:.1f}" y="{y - 14:.0f}" width="{len(text) * CHAR * 0.9 + 6:.1f}" '
            f'height="19" rx="4" fill="{HINT_BACK}"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{y:.0f}" fill="{HINT_TEXT}" font-size="{SIZE * 0.9:.1f}" '
            f'font-style="italic">{escape(text)}</text>'
        )
    out.append("</g>")
    # The diagnostic: a squiggle under its range, its message in a box under its line.
    start, end = diagnostic.range.start.character, diagnostic.range.end.character
    out.append(_squiggle(_x(start), _x(end), y_of(error_line) + 5))
    top = y_of(error_line) + 10
    out.append(
        f'<rect x="{GUTTER + 6}" y="{top:.0f}" width="{svg_width - GUTTER - 18}" '
        f'height="{box_height}" rx="4" fill="#2C313A" stroke="{ERROR}" stroke-opacity="0.6"/>'
    )
    out.append(
        f'<rect x="{GUTTER + 6}" y="{top:.0f}" width="3" height="{box_height}" fill="{ERROR}"/>'
    )
    for k, (text, color, bold) in enumerate(box_lines):
        weight = ' font-weight="bold"' if bold else ""
        out.append(
            f'<text x="{GUTTER + 20}" y="{top + 24 + k * 20:.0f}" fill="{color}" '
            f'font-family="{FONT}" font-size="13"{weight} xml:space="preserve">'
            f"{escape(text)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    OUT.write_text(render(), "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
