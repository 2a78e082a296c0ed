from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'conv.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_conv = resolve('conv')
    pass
    yield str(environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'head'))
    yield '\n    """A convolution padded symmetrically, as PyTorch pads: by an explicit `*_pad` layer of\n    zeros where it strides'
    yield str(environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'pad_doc'))
    yield '; otherwise by "same", which at stride 1 is\n    symmetric (at stride 2, Keras\' "same" would pad only after)."""\n    padding = '
    yield str(environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'padding'))
    yield '\n    if padding and '
    yield str(environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'explicit'))
    yield ':\n        x = layers.ZeroPadding2D(padding, name=name.removesuffix("_conv") + "_pad")(x)\n        padding = 0\n'
    if environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'subsample'):
        pass
        yield '    # Keras convolutions do not stride and dilate at once: a dilated one that strides runs at\n    # stride 1, then keeps every `stride`-th pixel, the very pixels PyTorch computes.\n    subsample = stride if dilation > 1 else 1\n'
    for l_1_line in environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'init'):
        _loop_vars = {}
        pass
        yield '    '
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '    '
    yield str(('x =' if environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'subsample') else 'return'))
    yield ' '
    yield str(environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'layer'))
    yield '(\n        filters,\n        kernel,\n        strides='
    yield str(('stride // subsample' if environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'subsample') else 'stride'))
    yield ',\n        padding="same" if padding else "valid",\n'
    for l_1_option in environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'options'):
        _loop_vars = {}
        pass
        yield '        '
        yield str(l_1_option)
        yield ',\n'
    l_1_option = missing
    yield '        name=name,\n    )(x)\n'
    if environment.getattr((undefined(name='conv') if l_0_conv is missing else l_0_conv), 'subsample'):
        pass
        yield '    if subsample > 1:\n        x = layers.MaxPooling2D(1, subsample, name=name.removesuffix("_conv") + "_subsample")(x)\n    return x\n'
    yield '\n\n'

blocks = {}
debug_info = '1=12&3=14&5=16&6=18&9=20&14=23&15=27&17=31&20=35&22=37&23=41&27=45'