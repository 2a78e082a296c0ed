from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'blur_pool.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass BlurPool2D(layers.Layer):\n    """Anti-aliased downsampling (Zhang, 2019) as timm\'s BlurPool2d: reflection padding, then\n    a fixed binomial filter of `size` taps in each direction on every channel, at `strides`.\n    It has no weights. Padded (size - 1) // 2 before and size // 2 after, so that a map of n\n    pixels becomes ceil(n / strides), as through the block\'s shortcut."""\n\n    def __init__(self, size: int = 3, strides: int = 2, **kwargs):\n        super().__init__(**kwargs)\n        self.size = size\n        self.strides = strides\n        self.padding = [(size - 1) // 2, size // 2]  # before and after, on both axes\n        taps = [1.0]  # row `size - 1` of Pascal\'s triangle, then normalized to sum to 1\n        for _ in range(size - 1):\n            taps = [a + b for a, b in zip([0.0, *taps], [*taps, 0.0], strict=True)]\n        self.taps = [t / 2 ** (size - 1) for t in taps]\n\n    def call(self, x):\n        x = keras.ops.pad(x, [[0, 0], self.padding, self.padding, [0, 0]], mode="reflect")\n        taps = keras.ops.convert_to_tensor(self.taps, dtype=x.dtype)\n        kernel = keras.ops.reshape(keras.ops.outer(taps, taps), (self.size, self.size, 1, 1))\n        kernel = keras.ops.tile(kernel, (1, 1, x.shape[-1], 1))\n        return keras.ops.depthwise_conv(x, kernel, strides=self.strides, padding="valid")\n\n    def compute_output_shape(self, input_shape):\n        n, h, w, c = input_shape\n\n        def size(length):\n            if length is None:\n                return None\n            return (length - 1) // self.strides + 1\n\n        return (n, size(h), size(w), c)\n\n    def get_config(self):\n        return {**super().get_config(), "size": self.size, "strides": self.strides}\n\n\n'

blocks = {}
debug_info = ''