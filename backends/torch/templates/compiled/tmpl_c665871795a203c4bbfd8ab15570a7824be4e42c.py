from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'split_attention.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_has_norm = resolve('has_norm')
    l_0_bias = resolve('bias')
    pass
    yield 'class SplitAttn(nn.Module):\n    """Split attention (Zhang et al., 2020; timm\'s SplitAttn): one 3x3 convolution in\n    `groups * radix` groups makes `radix` paths of `out_channels` each'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield ', then a norm'
    yield " and ReLU;\n    the paths' sum, its channels' means, a grouped 1x1 down to `attn_channels`"
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield ', a norm'
    yield ', ReLU\n    and a grouped 1x1 up to one weight per path and channel; a softmax across the paths in each\n    group (for one path, a sigmoid) gives the weights that sum the paths.\n    """\n\n    def __init__(\n        self,\n        in_channels: int,\n        out_channels: int,\n        attn_channels: int,\n        stride: int = 1,\n        dilation: int = 1,\n        groups: int = 1,\n        radix: int = 2,\n    ) -> None:\n        super().__init__()\n        self.radix = radix\n        self.groups = groups\n        self.conv = nn.Conv2d(\n            in_channels,\n            out_channels * radix,\n            kernel_size=3,\n            stride=stride,\n            padding=dilation,\n            dilation=dilation,\n            groups=groups * radix,\n            bias='
    yield str((undefined(name='bias') if l_0_bias is missing else l_0_bias))
    yield ',\n        )\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '        self.bn0 = norm(out_channels * radix)\n'
    yield '        self.act0 = nn.ReLU(inplace=True)\n        self.fc1 = nn.Conv2d(out_channels, attn_channels, kernel_size=1, groups=groups)\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '        self.bn1 = norm(attn_channels)\n'
    yield '        self.act1 = nn.ReLU(inplace=True)\n        self.fc2 = nn.Conv2d(attn_channels, out_channels * radix, kernel_size=1, groups=groups)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = self.act0('
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield 'self.bn0(self.conv(x))'
    else:
        pass
        yield 'self.conv(x)'
    yield ')\n        batch, channels = x.shape[0], x.shape[1] // self.radix\n        paths = x.reshape(batch, self.radix, channels, *x.shape[2:])\n        scale = self.fc1(paths.sum(1).mean((2, 3), keepdim=True))\n        scale = self.fc2(self.act1('
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield 'self.bn1(scale)'
    else:
        pass
        yield 'scale'
    yield '))\n        if self.radix == 1:\n            return x * torch.sigmoid(scale)\n        # The weights by group, then path, then channel: a softmax across the paths.\n        weights = scale.reshape(batch, self.groups, self.radix, -1).transpose(1, 2).softmax(1)\n        return (paths * weights.reshape(batch, self.radix, channels, 1, 1)).sum(1)\n'

blocks = {}
debug_info = '3=14&4=18&30=22&32=24&37=28&44=32&48=39'