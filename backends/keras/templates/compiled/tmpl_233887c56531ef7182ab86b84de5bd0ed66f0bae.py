from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'eca.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_eca = resolve('eca')
    pass
    yield 'def efficient_channel_attention(x, kernel, name):\n    """Efficient channel attention (Wang et al.): a 1-d convolution of `kernel` taps across the\n    channels\' means, zero-padded to keep their number, gates the channels."""\n    s = layers.GlobalAveragePooling2D(name=f"{name}_squeeze")(x)\n    s = layers.Reshape((-1, 1), name=f"{name}_reshape")(s)  # the channels as a sequence\n'
    if environment.getattr((undefined(name='eca') if l_0_eca is missing else l_0_eca), 'init'):
        pass
        yield '    # PyTorch\'s default kernel for 1-d convolutions: uniform in +-1/sqrt(fan_in).\n    s = layers.Conv1D(\n        1,\n        kernel,\n        padding="same",\n        use_bias=False,\n        kernel_initializer='
        yield str(environment.getattr((undefined(name='eca') if l_0_eca is missing else l_0_eca), 'init'))
        yield ',\n        name=f"{name}_conv",\n    )(s)\n'
    else:
        pass
        yield '    s = layers.Conv1D(1, kernel, padding="same", use_bias=False, name=f"{name}_conv")(s)\n'
    yield '    s = layers.Activation("sigmoid", name=f"{name}_gate")(s)\n    s = layers.Reshape((1, 1, -1), name=f"{name}_unshape")(s)\n    return layers.Multiply(name=f"{name}_excite")([x, s])\n\n\n'

blocks = {}
debug_info = '6=13&13=16'