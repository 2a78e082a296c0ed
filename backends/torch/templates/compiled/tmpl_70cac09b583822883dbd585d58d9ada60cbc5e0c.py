from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'frn.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class FilterResponseNorm(nn.Module):\n    """Filter Response Normalization with its thresholded linear unit (Singh and Krishnan,\n    2020), a norm that holds its nonlinearity: x over the root mean square of its channel\'s\n    map, scaled and shifted, then at least the learnt `tau`."""\n\n    def __init__(self, channels: int) -> None:\n        super().__init__()\n        self.weight = nn.Parameter(torch.ones(channels))\n        self.bias = nn.Parameter(torch.zeros(channels))\n        self.tau = nn.Parameter(torch.zeros(channels))\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = x * x.square().mean(dim=(2, 3), keepdim=True).add(NORM_EPS).rsqrt()\n        x = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)\n        return torch.maximum(x, self.tau.view(1, -1, 1, 1))\n'

blocks = {}
debug_info = ''