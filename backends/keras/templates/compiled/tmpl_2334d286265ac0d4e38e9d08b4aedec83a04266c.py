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
    if (environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'group') and environment.getattr((undefined(name='norm') if l_0_norm is missing else l_0_norm), 'group_size')):
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
debug_info = '1=12&2=14&19=20&20=22&35=28'