from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'evonorm.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class EvoNormS0(nn.Module):\n    """EvoNorm-S0 (Liu et al., 2020), a norm that holds its nonlinearity: x times sigmoid(v x),\n    over the standard deviation of x\'s group of channels (NORM_GROUPS of them), then scaled\n    and shifted."""\n\n    def __init__(self, channels: int) -> None:\n        super().__init__()\n        self.weight = nn.Parameter(torch.ones(channels))\n        self.bias = nn.Parameter(torch.zeros(channels))\n        self.v = nn.Parameter(torch.ones(channels))\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        n, c, h, w = x.shape\n        grouped = x.reshape(n, NORM_GROUPS, -1)\n        std = grouped.var(dim=2, unbiased=False, keepdim=True).add(NORM_EPS).sqrt()\n        std = std.expand_as(grouped).reshape(n, c, h, w)\n        x = x * torch.sigmoid(x * self.v.view(1, -1, 1, 1)) / std\n        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)\n'

blocks = {}
debug_info = ''