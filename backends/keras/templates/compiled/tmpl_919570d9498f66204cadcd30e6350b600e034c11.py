from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'minus_inf_padding.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass MinusInfPadding2D(layers.Layer):\n    """Pads height and width with -inf, as PyTorch\'s max pooling pads."""\n\n    def __init__(self, padding: int, **kwargs):\n        super().__init__(**kwargs)\n        self.padding = padding\n\n    def call(self, x):\n        p = self.padding\n        return keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=float("-inf"))\n\n    def compute_output_shape(self, input_shape):\n        n, h, w, c = input_shape\n        grow = 2 * self.padding\n        return (n, None if h is None else h + grow, None if w is None else w + grow, c)\n\n    def get_config(self):\n        return {**super().get_config(), "padding": self.padding}\n\n\n'

blocks = {}
debug_info = ''