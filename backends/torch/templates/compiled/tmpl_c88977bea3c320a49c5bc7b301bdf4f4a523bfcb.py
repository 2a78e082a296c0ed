from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'aggregated_paths.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_has_norm = resolve('has_norm')
    l_0_aggregated = resolve('aggregated')
    l_0_activation = resolve('activation')
    pass
    yield 'class AggregatedPaths(nn.ModuleList):\n    """ResNeXt\'s aggregated transformations as its paper first draws them (Xie et al., 2017,\n    Fig. 3a): `paths` parallel paths on the whole input, each a 1x1 convolution to\n    `mid_channels // paths` channels, a 3x3 (which strides) and a 1x1 out, with '
    yield str(('a norm and ' if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) else ''))
    yield 'the\n    activation after the first two; their outputs summed. With one norm after the sum, it\n    computes what a bottleneck with a grouped 3x3 computes (Fig. 3c).\n    """\n\n    def __init__(\n        self,\n        in_channels: int,\n        mid_channels: int,\n        out_channels: int,\n        paths: int,\n        stride: int = 1,\n        dilation: int = 1,\n    ) -> None:\n        width = mid_channels // paths\n        super().__init__(\n            nn.Sequential(\n                OrderedDict(\n                    conv1=nn.Conv2d(in_channels, width, kernel_size=1, bias='
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield '),\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '                    bn1=norm(width),\n'
    yield '                    act1='
    yield str((undefined(name='activation') if l_0_activation is missing else l_0_activation))
    yield ',\n                    conv2=nn.Conv2d(\n                        width,\n                        width,\n                        kernel_size=3,\n                        stride=stride,\n                        padding=dilation,\n                        dilation=dilation,\n                        bias='
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield ',\n                    ),\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '                    bn2=norm(width),\n'
    yield '                    act2='
    yield str((undefined(name='activation') if l_0_activation is missing else l_0_activation))
    yield ',\n                    conv3=nn.Conv2d(width, out_channels, kernel_size=1, bias='
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield '),\n                )\n            )\n            for _ in range(paths)\n        )\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        return sum(path(x) for path in self)\n'

blocks = {}
debug_info = '4=15&22=17&23=19&26=23&34=25&36=27&39=31&40=33'