from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'drop_path.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class DropPath(nn.Module):\n    """Stochastic depth: drops the whole residual branch of a sample, in training only."""\n\n    def __init__(self, rate: float) -> None:\n        super().__init__()\n        self.rate = rate\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        if not self.training:\n            return x\n        keep = 1.0 - self.rate\n        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)\n        return x * mask / keep\n'

blocks = {}
debug_info = ''