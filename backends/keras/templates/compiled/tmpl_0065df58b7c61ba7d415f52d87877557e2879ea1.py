from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'std_conv.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass StandardizedConv2D(layers.Conv2D):\n    """A weight-standardized convolution (Qiao et al., 2019; BiT\'s): each output channel\'s\n    weights less their mean, over their standard deviation, before it convolves."""\n\n    def convolution_op(self, inputs, kernel):\n        mean = keras.ops.mean(kernel, axis=(0, 1, 2), keepdims=True)\n        var = keras.ops.var(kernel, axis=(0, 1, 2), keepdims=True)\n        return super().convolution_op(inputs, (kernel - mean) / keras.ops.sqrt(var + CONV_EPS))\n\n\n'

blocks = {}
debug_info = ''