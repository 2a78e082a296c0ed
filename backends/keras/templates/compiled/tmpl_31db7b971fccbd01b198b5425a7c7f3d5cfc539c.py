from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'global_context.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_global_context = resolve('global_context')
    pass
    yield 'def global_context(x, filters, name):\n    """Global context attention (Cao et al.): a 1x1 convolution\'s one map, softmaxed over the\n    positions, weights the pixels into one context per channel, which a 1x1 convolution to\n'
    if environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'gate'):
        pass
        yield '    `filters`, a layer norm, ReLU and a 1x1 back turn into a gate on each channel."""\n'
    else:
        pass
        yield '    `filters`, a layer norm, ReLU and a 1x1 back add to every position."""\n'
    yield '    weights = conv(x, 1, 1, f"{name}_attend"'
    yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'bias'))
    yield ')\n    weights = layers.Reshape((-1,), name=f"{name}_flatten")(weights)  # (batch, positions)\n    weights = layers.Softmax(name=f"{name}_softmax")(weights)\n    pixels = layers.Reshape((-1, x.shape[-1]), name=f"{name}_pixels")(x)\n    context = layers.Dot(axes=1, name=f"{name}_pool")([weights, pixels])  # (batch, channels)\n    context = layers.Reshape((1, 1, -1), name=f"{name}_context")(context)\n    t = conv(context, filters, 1, f"{name}_fc1"'
    yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'bias'))
    yield ')\n    t = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(t)\n    t = layers.Activation("relu", name=f"{name}_relu")(t)\n    t = conv(t, x.shape[-1], 1, f"{name}_fc2"'
    yield str(environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'bias'))
    yield ')\n'
    if environment.getattr((undefined(name='global_context') if l_0_global_context is missing else l_0_global_context), 'gate'):
        pass
        yield '    t = layers.Activation("sigmoid", name=f"{name}_gate")(t)\n    return layers.Multiply(name=f"{name}_scale")([x, t])\n'
    else:
        pass
        yield '    return layers.Add(name=f"{name}_add")([x, t])\n'
    yield '\n\n'

blocks = {}
debug_info = '4=13&9=20&15=22&18=24&19=26'