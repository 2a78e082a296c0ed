from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'conv_norm_act.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_has_norm = resolve('has_norm')
    l_0_bias = resolve('bias')
    l_0_activation = resolve('activation')
    pass
    yield 'class ConvNormAct(nn.Sequential):\n    """A convolution'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield ', its norm'
    yield " and, with `act`, the activation, as one module (timm's\n    ConvNormAct, whose layers are `conv`"
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield ' and `bn`'
    yield '), padded to keep the size at stride 1.\n    """\n\n    def __init__(\n        self,\n        in_channels: int,\n        out_channels: int,\n        kernel_size: int = 1,\n        stride: int = 1,\n        dilation: int = 1,\n        groups: int = 1,\n        act: bool = True,\n    ) -> None:\n        super().__init__()\n        self.conv = nn.Conv2d(\n            in_channels,\n            out_channels,\n            kernel_size,\n            stride=stride,\n            padding=dilation * (kernel_size // 2),\n            dilation=dilation,\n            groups=groups,\n            bias='
    yield str((undefined(name='bias') if l_0_bias is missing else l_0_bias))
    yield ',\n        )\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '        self.bn = norm(out_channels)\n'
    yield '        if act:\n            self.act = '
    yield str((undefined(name='activation') if l_0_activation is missing else l_0_activation))
    yield '\n'

blocks = {}
debug_info = '2=15&3=19&25=23&27=25&31=29'