from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'std_conv.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield 'class StdConv2d(nn.Conv2d):\n    """A weight-standardized convolution (Qiao et al., 2019; BiT\'s): each output channel\'s\n    weights less their mean, over their standard deviation, before it convolves."""\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        mean = self.weight.mean(dim=(1, 2, 3), keepdim=True)\n        var = self.weight.var(dim=(1, 2, 3), unbiased=False, keepdim=True)\n        weight = (self.weight - mean) / torch.sqrt(var + CONV_EPS)\n        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)\n'

blocks = {}
debug_info = ''