from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'channel_pad.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    pass
    yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass ChannelPad(layers.Layer):\n    """Zero channels on both sides of the input\'s, up to `channels` (half before, the rest\n    after): the parameter-free shortcut (option A)."""\n\n    def __init__(self, channels: int, **kwargs):\n        super().__init__(**kwargs)\n        self.channels = channels\n\n    def call(self, x):\n        grow = self.channels - x.shape[-1]\n        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [grow // 2, grow - grow // 2]])\n\n    def compute_output_shape(self, input_shape):\n        return (*input_shape[:-1], self.channels)\n\n    def get_config(self):\n        return {**super().get_config(), "channels": self.channels}\n\n\n'

blocks = {}
debug_info = ''