from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'squeeze_excite.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_squeeze_excite = resolve('squeeze_excite')
    pass
    yield 'def squeeze_excite(x, filters, name):\n    """Squeeze-and-excitation (Hu et al.): the channels\' means, reduced to `filters` and\n    expanded back by 1x1 convolutions with biases, a '
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'activation_name'))
    yield ' between, gate the channels."""\n    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)\n    s = conv(s, filters, 1, f"{name}_reduce"'
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'bias'))
    yield ')\n    s = layers.Activation("'
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'activation'))
    yield '", name=f"{name}_'
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'activation'))
    yield '")(s)\n    s = conv(s, x.shape[-1], 1, f"{name}_expand"'
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'bias'))
    yield ')\n'
    if (environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'gate') == 'hard_sigmoid'):
        pass
        yield "    # Keras' hard sigmoid is PyTorch's Hardsigmoid: relu6(x + 3) / 6.\n"
    yield '    s = layers.Activation("'
    yield str(environment.getattr((undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite), 'gate'))
    yield '", name=f"{name}_gate")(s)\n    return layers.Multiply(name=f"{name}_excite")([x, s])\n\n\n'

blocks = {}
debug_info = '3=13&5=15&6=17&7=21&8=23&11=27'