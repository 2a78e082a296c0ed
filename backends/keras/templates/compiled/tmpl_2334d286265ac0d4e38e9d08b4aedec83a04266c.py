from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'norm.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_norm = resolve('norm')
    pass
    if (environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'kind') == 'evonorm_s0'):
        pass
        yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass EvoNormS0(layers.Layer):\n    """EvoNorm-S0 (Liu et al., 2020), a norm that holds its nonlinearity: x times sigmoid(v x),\n    over the standard deviation of x\'s group of channels (NORM_GROUPS of them), then scaled\n    and shifted. Its weights are PyTorch\'s `weight`, `bias` and `v`."""\n\n    def __init__(self, zero: bool = False, **kwargs):\n        super().__init__(**kwargs)\n        self.zero = zero\n\n    def get_config(self):\n        return {**super().get_config(), "zero": self.zero}\n\n    def build(self, input_shape):\n        channels = input_shape[-1]\n        # its scale at zero where it ends a residual branch that starts as nothing\n        scale = "zeros" if self.zero else "ones"\n        self.gamma = self.add_weight(shape=(channels,), initializer=scale, name="gamma")\n        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")\n        self.v = self.add_weight(shape=(channels,), initializer="ones", name="v")\n\n    def call(self, x):\n        _, height, width, channels = keras.ops.shape(x)\n        grouped = keras.ops.reshape(x, (-1, height, width, NORM_GROUPS, channels // NORM_GROUPS))\n        var = keras.ops.var(grouped, axis=(1, 2, 4), keepdims=True)\n        std = keras.ops.broadcast_to(keras.ops.sqrt(var + NORM_EPSILON), keras.ops.shape(grouped))\n        std = keras.ops.reshape(std, keras.ops.shape(x))\n        x = x * keras.ops.sigmoid(x * self.v) / std\n        return x * self.gamma + self.beta\n\n\n'
        if environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'zero'):
            pass
            yield 'def norm(x, name, zero=False):\n    """EvoNorm-S0, its nonlinearity with it; with `zero`, its scale starts at zero."""\n    return EvoNormS0(zero=zero, name=name)(x)\n'
        else:
            pass
            yield 'def norm(x, name):\n    """EvoNorm-S0, its nonlinearity with it."""\n    return EvoNormS0(name=name)(x)\n'
    elif (environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'kind') == 'frn'):
        pass
        yield '@keras.saving.register_keras_serializable(package="resdsl")\nclass FilterResponseNorm(layers.Layer):\n    """Filter Response Normalization with its thresholded linear unit (Singh and Krishnan,\n    2020), a norm that holds its nonlinearity: x over the root mean square of its channel\'s\n    map, scaled and shifted, then at least the learnt `tau`. Its weights are PyTorch\'s\n    `weight`, `bias` and `tau`."""\n\n    def __init__(self, zero: bool = False, **kwargs):\n        super().__init__(**kwargs)\n        self.zero = zero\n\n    def get_config(self):\n        return {**super().get_config(), "zero": self.zero}\n\n    def build(self, input_shape):\n        channels = input_shape[-1]\n        # its scale at zero where it ends a residual branch that starts as nothing\n        scale = "zeros" if self.zero else "ones"\n        self.gamma = self.add_weight(shape=(channels,), initializer=scale, name="gamma")\n        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")\n        self.tau = self.add_weight(shape=(channels,), initializer="zeros", name="tau")\n\n    def call(self, x):\n        square = keras.ops.mean(keras.ops.square(x), axis=(1, 2), keepdims=True)\n        x = x * keras.ops.rsqrt(square + NORM_EPSILON)\n        return keras.ops.maximum(x * self.gamma + self.beta, self.tau)\n\n\n'
        if environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'zero'):
            pass
            yield 'def norm(x, name, zero=False):\n    """Filter Response Normalization, its thresholded linear unit with it; with `zero`, its\n    scale starts at zero."""\n    return FilterResponseNorm(zero=zero, name=name)(x)\n'
        else:
            pass
            yield 'def norm(x, name):\n    """Filter Response Normalization, its thresholded linear unit with it."""\n    return FilterResponseNorm(name=name)(x)\n'
    elif (environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'group') and environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'group_size')):
        pass
        if environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'zero'):
            pass
            yield 'def norm(x, name, zero=False):\n    """A group norm of NORM_GROUP_SIZE channels a group with PyTorch\'s epsilon; with `zero`, its\n    scale starts at zero, so the residual branch it ends starts as nothing."""\n    return layers.GroupNormalization(\n        x.shape[-1] // NORM_GROUP_SIZE,\n        epsilon=NORM_EPSILON,\n        gamma_initializer="zeros" if zero else "ones",\n        name=name,\n    )(x)\n'
        else:
            pass
            yield 'def norm(x, name):\n    """A group norm of NORM_GROUP_SIZE channels a group with PyTorch\'s epsilon."""\n    return layers.GroupNormalization(\n        x.shape[-1] // NORM_GROUP_SIZE, epsilon=NORM_EPSILON, name=name\n    )(x)\n'
    elif environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'group'):
        pass
        if environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'zero'):
            pass
            yield 'def norm(x, name, zero=False):\n    """A group norm of NORM_GROUPS groups with PyTorch\'s epsilon; with `zero`, its scale starts\n    at zero, so the residual branch it ends starts as nothing."""\n    return layers.GroupNormalization(\n        NORM_GROUPS,\n        epsilon=NORM_EPSILON,\n        gamma_initializer="zeros" if zero else "ones",\n        name=name,\n    )(x)\n'
        else:
            pass
            yield 'def norm(x, name):\n    """A group norm of NORM_GROUPS groups with PyTorch\'s epsilon."""\n    return layers.GroupNormalization(NORM_GROUPS, epsilon=NORM_EPSILON, name=name)(x)\n'
    elif environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'zero'):
        pass
        yield 'def norm(x, name, zero=False):\n    """A batch norm with PyTorch\'s epsilon and momentum; with `zero`, its scale starts at zero,\n    so the residual branch it ends starts as nothing."""\n    return layers.BatchNormalization(\n        epsilon=NORM_EPSILON,\n        momentum=NORM_MOMENTUM,\n        gamma_initializer="zeros" if zero else "ones",\n        name=name,\n    )(x)\n'
    else:
        pass
        yield 'def norm(x, name):\n    """A batch norm with PyTorch\'s epsilon and momentum."""\n    return layers.BatchNormalization(epsilon=NORM_EPSILON, momentum=NORM_MOMENTUM, name=name)(x)\n'
    yield '\n\n'

blocks = {}
debug_info = '1=12&33=15&42=21&71=24&81=30&82=32&99=38&100=40&115=46'