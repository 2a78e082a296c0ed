from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'split_attention.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_split_attention = resolve('split_attention')
    pass
    yield 'def split_attention(x, filters, attn_filters, stride=1, dilation=1, groups=1, radix=2, name=None):\n    """Split attention (Zhang et al., 2020; timm\'s SplitAttn): one 3x3 convolution in\n    `groups * radix` groups makes `radix` paths of `filters` each'
    if environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'norm'):
        pass
        yield ', then a norm'
    yield " and ReLU;\n    the paths' sum, its channels' means, a grouped 1x1 down to `attn_filters`"
    if environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'norm'):
        pass
        yield ', a norm'
    yield ', ReLU\n    and a grouped 1x1 up to one weight per path and channel; a softmax across the paths in each\n    group (for one path, a sigmoid) gives the weights that sum the paths."""\n    x = conv(\n        x,\n        filters * radix,\n        3,\n        f"{name}_conv",\n        stride=stride,\n        dilation=dilation,\n        groups=groups * radix,\n'
    if environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'bias'):
        pass
        yield '        bias='
        yield str(environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'bias'))
        yield ',\n'
    yield '    )\n'
    if environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'norm'):
        pass
        yield '    x = norm(x, f"{name}_bn")\n'
    yield '    x = layers.Activation("relu", name=f"{name}_relu")(x)\n    paths = ops.split(x, radix, axis=-1) if radix > 1 else [x]\n    s = layers.Add(name=f"{name}_sum")(paths) if radix > 1 else x\n    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_attn_pool")(s)\n    s = conv(s, attn_filters, 1, f"{name}_attn_reduce", groups=groups'
    yield str(environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'attn_bias'))
    yield ')\n'
    if environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'norm'):
        pass
        yield '    s = norm(s, f"{name}_attn_bn")\n'
    yield '    s = layers.Activation("relu", name=f"{name}_attn_relu")(s)\n    s = conv(s, filters * radix, 1, f"{name}_attn_select", groups=groups'
    yield str(environment.getattr((undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention), 'attn_bias'))
    yield ')\n    if radix == 1:\n        s = layers.Activation("sigmoid", name=f"{name}_attn_gate")(s)\n        return layers.Multiply(name=f"{name}_select")([x, s])\n    # The weights by group, then path, then channel: a softmax across the paths, then by path.\n    # (Without the 1x1 map\'s axes: TensorFlow\'s softmax takes at most five.)\n    s = layers.Reshape((groups, radix, filters // groups), name=f"{name}_attn_groups")(s)\n    s = layers.Softmax(axis=-2, name=f"{name}_attn_softmax")(s)\n    s = layers.Permute((2, 1, 3), name=f"{name}_attn_paths")(s)\n    s = layers.Reshape((1, 1, radix, filters), name=f"{name}_attn_weights")(s)\n    return ops.sum(ops.stack(paths, axis=-2) * s, axis=-2)\n\n\n'

blocks = {}
debug_info = '3=13&4=17&15=21&16=24&19=27&26=31&27=33&31=37'