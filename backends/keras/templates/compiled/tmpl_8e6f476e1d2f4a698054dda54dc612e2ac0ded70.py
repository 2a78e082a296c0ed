from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'ceil_max_pool.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass CeilMaxPooling2D(layers.Layer):\n    """PyTorch\'s `MaxPool2d(size, strides, ceil_mode=True)` without padding (Caffe\'s pool): the\n    maximum of each window from the top left, the windows at the bottom and right edges taking\n    only the pixels they cover, so that the size rounds up. It has no weights."""\n\n    def __init__(self, size: int = 3, strides: int = 2, **kwargs):\n        super().__init__(**kwargs)\n        self.size = size\n        self.strides = strides\n\n    def call(self, x):\n        height, width = keras.ops.shape(x)[1:3]\n        s, t = self.size, self.strides\n        # -inf after each axis, up to the last window\'s end: it never wins the maximum.\n        pads = [[0, 0], [0, -(height - s) % t], [0, -(width - s) % t], [0, 0]]\n        x = keras.ops.pad(x, pads, constant_values=float("-inf"))\n        return keras.ops.max_pool(x, s, t, "valid")\n\n    def compute_output_shape(self, input_shape):\n        n, h, w, c = input_shape\n\n        def size(length):\n            return None if length is None else -(-(length - self.size) // self.strides) + 1\n\n        return (n, size(h), size(w), c)\n\n    def get_config(self):\n        return {**super().get_config(), "size": self.size, "strides": self.strides}\n\n\n'

blocks = {}
debug_info = ''