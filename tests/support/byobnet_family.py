"""Which of timm's `byobnet` networks are ResNets this language covers, read from timm.

byobnet builds many families from one configurable network; its ResNets are those named
`*resnet*` or `*resnext*`. Left out, as the README says: the CLIP ResNets (attention pooling)
and `resnet50_mlp` (an MLP head). The ResNets whose features are still being built (global-
context and bottleneck attention, edge blocks) are PENDING: a test fails as
soon as one of them gains a spec, so that it leaves the list.
"""

from __future__ import annotations

import re

LEFT_OUT = re.compile(r"_clip|_mlp$")
PENDING = {
    "bat_resnext26ts": "bottleneck attention (BAT)",
}


def byobnet_resnets() -> list[str]:
    """The ResNets of the installed timm's byobnet module."""
    import timm

    return [
        name
        for name in timm.list_models(module="byobnet")
        if re.search(r"resne(t|xt)", name) and not LEFT_OUT.search(name)
    ]


def covered() -> list[str]:
    """Those with a spec in specs/byobnet (the byobnet ResNets not PENDING)."""
    return [name for name in byobnet_resnets() if name not in PENDING]
