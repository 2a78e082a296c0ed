from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'selective_kernel.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_selective_kernel = resolve('selective_kernel')
    pass
    yield 'def selective_kernel(\n    x, filters, attn_filters, stride=1, dilation=1, groups=1, paths=2, split=True, name=None\n):\n    """A selective kernel convolution (Li et al., 2019; timm\'s SelectiveKernel): `paths` 3x3\n    convolutions, path k (from 0) dilated k + 1 times, each with its norm and activation, on\n    the input or, with `split`, each on its share of the channels; their outputs summed, each\n    path\'s channels weighted by a softmax across the paths of what the attention (the sum\'s\n    channel means, a 1x1 down to `attn_filters`'
    if environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'norm'):
        pass
        yield ', a norm'
    yield ', ReLU, a 1x1 up) makes of them."""\n    parts = ops.split(x, paths, axis=-1) if split else [x] * paths\n    outs = []\n    for k, part in enumerate(parts):\n        y = conv(\n            part,\n            filters,\n            3,\n            f"{name}_{k + 1}_conv",\n            stride=stride,\n            dilation=dilation * (k + 1),\n            groups=groups,\n'
    if environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'bias'):
        pass
        yield '            bias='
        yield str(environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'bias'))
        yield ',\n'
    yield '        )\n'
    if environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'norm'):
        pass
        yield '        y = norm(y, f"{name}_{k + 1}_bn")\n'
    yield '        y = layers.Activation("'
    yield str(environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'activation'))
    yield '", name=f"{name}_{k + 1}_'
    yield str(environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'activation'))
    yield '")(y)\n        outs.append(y)\n    s = layers.Add(name=f"{name}_sum")(outs)\n    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_attn_pool")(s)\n    s = conv(s, attn_filters, 1, f"{name}_attn_reduce"'
    yield str(environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'attn_bias'))
    yield ')\n'
    if environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'norm'):
        pass
        yield '    s = norm(s, f"{name}_attn_bn")\n'
    yield '    s = layers.Activation("relu", name=f"{name}_attn_relu")(s)\n    s = conv(s, filters * paths, 1, f"{name}_attn_select"'
    yield str(environment.getattr((undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel), 'attn_bias'))
    yield ')\n    # One weight per path and channel, path-major as PyTorch\'s view of (paths, channels).\n    s = layers.Reshape((1, 1, paths, filters), name=f"{name}_attn_weights")(s)\n    s = layers.Softmax(axis=-2, name=f"{name}_attn_softmax")(s)\n    return ops.sum(ops.stack(outs, axis=-2) * s, axis=-2)\n\n\n'

blocks = {}
debug_info = '8=13&20=17&21=20&24=23&27=27&31=31&32=33&36=37'