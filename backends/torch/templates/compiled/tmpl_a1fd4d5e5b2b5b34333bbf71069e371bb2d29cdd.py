from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'blur_pool.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class BlurPool2d(nn.Module):\n    """Anti-aliased downsampling (Zhang, 2019): reflect padding, then a fixed binomial filter of\n    `size` x `size` taps on each channel, at `stride`. The filter is a buffer outside the state\n    dict, as timm\'s `BlurPool2d`. Padded (size - 1) // 2 before and size // 2 after, so that a\n    map of n pixels becomes ceil(n / stride), as through the block\'s shortcut.\n    """\n\n    def __init__(self, channels: int, size: int, stride: int) -> None:\n        super().__init__()\n        self.channels = channels\n        self.stride = stride\n        self.padding = ((size - 1) // 2, size // 2) * 2  # left, right, top, bottom\n        taps = torch.ones(1)\n        for _ in range(size - 1):  # the next row of Pascal\'s triangle\n            taps = torch.cat((taps, torch.zeros(1))) + torch.cat((torch.zeros(1), taps))\n        taps = taps / taps.sum()\n        filt = (taps[:, None] * taps[None, :]).expand(channels, 1, size, size)\n        self.register_buffer("filt", filt.contiguous(), persistent=False)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = F.pad(x, self.padding, mode="reflect")\n        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)\n'

blocks = {}
debug_info = ''