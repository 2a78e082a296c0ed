from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'ceil_pool.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass CeilAveragePooling2D(layers.Layer):\n    """PyTorch\'s `AvgPool2d(size, size, ceil_mode=True, count_include_pad=False)`: the mean of\n    each `size`x`size` window from the top left, where windows at the bottom and right edges\n    average only the pixels they cover. Keras\' "same" pooling is that only for size 2; beyond,\n    it pads before the input too. It has no weights."""\n\n    def __init__(self, size: int = 2, **kwargs):\n        super().__init__(**kwargs)\n        self.size = size\n\n    def call(self, x):\n        s = self.size\n        height, width = keras.ops.shape(x)[1:3]\n        pads = [[0, 0], [0, -height % s], [0, -width % s], [0, 0]]\n        # Zeros pad the sums; the mean of a padded mask of ones counts what each window covers.\n        total = keras.ops.average_pool(keras.ops.pad(x, pads), s, s, "valid")\n        ones = keras.ops.pad(keras.ops.ones_like(x[..., :1]), pads)\n        return total / keras.ops.average_pool(ones, s, s, "valid")\n\n    def compute_output_shape(self, input_shape):\n        n, h, w, c = input_shape\n\n        def size(length):\n            return None if length is None else -(-length // self.size)\n\n        return (n, size(h), size(w), c)\n\n    def get_config(self):\n        return {**super().get_config(), "size": self.size}\n\n\n'

blocks = {}
debug_info = ''