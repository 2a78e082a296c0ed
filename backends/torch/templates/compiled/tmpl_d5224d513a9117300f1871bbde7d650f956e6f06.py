from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'squeeze_excite.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_se_act_name = resolve('se_act_name')
    l_0_se_act = resolve('se_act')
    l_0_gate = resolve('gate')
    pass
    yield 'class SqueezeExcite(nn.Module):\n    """Squeeze-and-excitation (Hu et al., 2018): the channels\' means, a 1x1 convolution down to\n    `reduced` channels, '
    yield str((undefined(name='se_act_name') if l_0_se_act_name is missing else l_0_se_act_name))
    yield ', one back up, and a gate that scales each channel of the input.\n    """\n\n    def __init__(self, channels: int, reduced: int) -> None:\n        super().__init__()\n        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)\n        self.act = '
    yield str((undefined(name='se_act') if l_0_se_act is missing else l_0_se_act))
    yield '\n        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)\n        self.gate = '
    yield str((undefined(name='gate') if l_0_gate is missing else l_0_gate))
    yield '\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        scale = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))\n        return x * self.gate(scale)\n'

blocks = {}
debug_info = '3=15&9=17&11=19'