"""Specs of timm's networks at another output stride (timm's `output_stride=8` or `16`),
written as a user would: the library spec extended, its last stages dilated in place of
their strides."""

from __future__ import annotations

import re
from pathlib import Path

import resdsl

# Per output stride, the dilation of each of a four-stage network's stages (timm's make_blocks:
# the stride of every stage past the output stride becomes a doubling of the dilation).
DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2), 32: (1, 1, 1, 1)}


def dilated_text(path: Path, output_stride: int) -> str:
    """A spec extending `path` whose stages dilate as timm's at `output_stride`: each dilated
    stage redeclared from its own declaration, without its stride, with `dilation`."""
    network = resdsl.load(path)
    stages = []
    for stage, dilation in zip(network.stages, DILATIONS[output_stride], strict=True):
        if dilation == 1:
            continue
        span = stage.span
        text = Path(span.file).read_text()[span.start : span.end]
        text = re.sub(r"\s*/\s*2\b", "", text, count=1)
        if "{" in text:
            text = text.replace("{", f"{{ dilation {dilation}", 1)
        else:
            text += f" {{ dilation {dilation} }}"
        stages.append("  " + text)
    body = "\n".join(stages)
    return f'network {network.name}_os{output_stride} extends "{Path(path).name}" {{\n{body}\n}}\n'
