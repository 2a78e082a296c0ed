from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'eca.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class EfficientChannelAttention(nn.Module):\n    """Efficient channel attention (Wang et al., 2020): a 1-d convolution across the channels\'\n    means, and a sigmoid that scales each channel of the input.\n    """\n\n    def __init__(self, kernel_size: int) -> None:\n        super().__init__()\n        padding = (kernel_size - 1) // 2\n        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=padding, bias=False)\n        self.gate = nn.Sigmoid()\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        means = x.mean((2, 3)).unsqueeze(1)  # (batch, 1, channels)\n        scale = self.gate(self.conv(means)).view(x.shape[0], -1, 1, 1)\n        return x * scale\n'

blocks = {}
debug_info = ''