from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'aggregated_paths.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_aggregated = resolve('aggregated')
    pass
    yield 'def aggregated_paths(x, mid_filters, filters, paths, stride=1, dilation=1, name=None):\n    """ResNeXt\'s aggregated transformations as its paper first draws them (Xie et al., 2017,\n    Fig. 3a): `paths` parallel paths on the whole input, each a 1x1 convolution to\n    `mid_filters // paths` channels, a 3x3 (which strides) and a 1x1 out, with '
    yield str(('a norm and ' if environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'norm') else ''))
    yield 'the\n    activation after the first two; their outputs summed."""\n    width = mid_filters // paths\n    outs = []\n    for k in range(1, paths + 1):\n        y = conv(x, width, 1, f"{name}_{k}_1_conv"'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield ')\n'
    if environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'norm'):
        pass
        yield '        y = norm(y, f"{name}_{k}_1_bn")\n'
    yield '        y = layers.Activation("'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'activation'))
    yield '", name=f"{name}_{k}_1_'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'activation'))
    yield '")(y)\n        y = conv(y, width, 3, f"{name}_{k}_2_conv", stride=stride, dilation=dilation'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield ')\n'
    if environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'norm'):
        pass
        yield '        y = norm(y, f"{name}_{k}_2_bn")\n'
    yield '        y = layers.Activation("'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'activation'))
    yield '", name=f"{name}_{k}_2_'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'activation'))
    yield '")(y)\n        outs.append(conv(y, filters, 1, f"{name}_{k}_3_conv"'
    yield str(environment.getattr((undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated), 'bias'))
    yield '))\n    return layers.Add(name=f"{name}_sum")(outs) if paths > 1 else outs[0]\n\n\n'

blocks = {}
debug_info = '4=13&9=15&10=17&13=21&14=25&15=27&18=31&19=35'