from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'global_context.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_global_context = resolve('global_context')
    pass
    yield 'class LayerNorm2d(nn.LayerNorm):\n    """A layer norm over the channels of each position of an NCHW map (timm\'s LayerNorm2d)."""\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = x.permute(0, 2, 3, 1)\n        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)\n        return x.permute(0, 3, 1, 2)\n\n\nclass GlobalContext(nn.Module):\n    """Global context attention (Cao et al., 2019): a 1x1 convolution\'s one map, softmaxed over\n    the positions, weights the input\'s pixels into one context per channel, which a 1x1\n    convolution to `reduced` channels, a layer norm, ReLU and a 1x1 back\n'
    if environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'scale'):
        pass
        yield '    turn into a gate on each channel of the input.\n'
    else:
        pass
        yield '    add to every position of the input.\n'
    yield '    """\n\n    def __init__(self, channels: int, reduced: int) -> None:\n        super().__init__()\n        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1)\n        self.'
    yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'mlp'))
    yield ' = nn.Sequential(\n            OrderedDict(\n                fc1=nn.Conv2d(channels, reduced, kernel_size=1),\n                norm=LayerNorm2d(reduced, eps=1e-6),\n                act=nn.ReLU(inplace=True),\n                fc2=nn.Conv2d(reduced, channels, kernel_size=1),\n            )\n        )\n'
    if environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'scale'):
        pass
        yield '        self.gate = nn.Sigmoid()\n'
    yield '\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        weights = self.conv_attn(x).flatten(2).softmax(dim=-1)  # (batch, 1, positions)\n        context = (x.flatten(2) @ weights.transpose(1, 2)).unsqueeze(-1)  # (batch, channels, 1, 1)\n'
    if environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'scale'):
        pass
        yield '        return x * self.gate(self.'
        yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'mlp'))
        yield '(context))\n'
    else:
        pass
        yield '        return x + self.'
        yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'mlp'))
        yield '(context)\n'

blocks = {}
debug_info = '14=13&24=20&32=22&39=26&40=29&42=34'