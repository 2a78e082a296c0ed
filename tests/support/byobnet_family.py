"""Which of timm's `byobnet` networks are ResNets this language covers, read from timm.

byobnet builds many families from one configurable network; its ResNets are those named
`*resnet*` or `*resnext*`. Left out, as the README says: the CLIP ResNets (attention pooling)
and `resnet50_mlp` (an MLP head). Every other one has a spec of its name in specs/byobnet.
"""

from __future__ import annotations

import re

LEFT_OUT = re.compile(r"_clip|_mlp$")


def byobnet_resnets() -> list[str]:
    """The ResNets of the installed timm's byobnet module."""
    import timm

    return [
        name
        for name in timm.list_models(module="byobnet")
        if re.search(r"resne(t|xt)", name) and not LEFT_OUT.search(name)
    ]


def covered() -> list[str]:
    """Those with a spec in specs/byobnet: all but the ones left out."""
    return byobnet_resnets()
