from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'selective_kernel.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_has_norm = resolve('has_norm')
    pass
    yield 'class SelectiveKernel(nn.Module):\n    """A selective kernel convolution (Li et al., 2019; timm\'s SelectiveKernel): `paths` 3x3\n    convolutions, path k (from 0) dilated k + 1 times, each with its norm and activation, on\n    the input or, with `split`, each on its share of the channels; their outputs summed, each\n    path\'s channels weighted by what `attn` makes of them.\n    """\n\n    def __init__(\n        self,\n        in_channels: int,\n        out_channels: int,\n        attn_channels: int,\n        stride: int = 1,\n        dilation: int = 1,\n        groups: int = 1,\n        paths: int = 2,\n        split: bool = True,\n    ) -> None:\n        super().__init__()\n        self.split = split\n        width = in_channels // paths if split else in_channels\n        self.paths = nn.ModuleList(\n            ConvNormAct(width, out_channels, 3, stride, dilation * (k + 1), groups)\n            for k in range(paths)\n        )\n        self.attn = SelectiveKernelAttn(out_channels, attn_channels, paths)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        count = len(self.paths)\n        parts = torch.chunk(x, count, 1) if self.split else [x] * count\n        outs = torch.stack([path(part) for path, part in zip(self.paths, parts, strict=True)], 1)\n        return (outs * self.attn(outs)).sum(1)\n\n\nclass SelectiveKernelAttn(nn.Module):\n    """The selective kernel\'s weights: the paths\' sum, its channels\' means, a 1x1 convolution\n    down to `attn_channels`'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield ', a norm'
    yield ', ReLU, a 1x1 to one weight per path and channel, a\n    softmax across the paths.\n    """\n\n    def __init__(self, channels: int, attn_channels: int, paths: int) -> None:\n        super().__init__()\n        self.fc_reduce = nn.Conv2d(channels, attn_channels, kernel_size=1, bias=False)\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '        self.bn = norm(attn_channels)\n'
    yield '        self.act = nn.ReLU(inplace=True)\n        self.fc_select = nn.Conv2d(attn_channels, channels * paths, kernel_size=1, bias=False)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        batch, paths, channels = x.shape[:3]\n        scale = self.fc_reduce(x.sum(1).mean((2, 3), keepdim=True))\n        scale = self.fc_select(self.act('
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield 'self.bn(scale)'
    else:
        pass
        yield 'scale'
    yield '))\n        return torch.softmax(scale.view(batch, paths, channels, 1, 1), 1)\n'

blocks = {}
debug_info = '37=13&44=17&53=21'