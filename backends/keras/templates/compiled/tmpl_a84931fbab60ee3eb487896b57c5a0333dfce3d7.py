from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'drop_path_rate.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_drop_path = resolve('drop_path')
    pass
    yield 'def drop_path_rate(index):\n    """Stochastic depth of block `index` (from 0, in the whole network): rising linearly from\n    0 at the first block to DROP_PATH_RATE at the last."""\n    return '
    yield str(environment.getattr((undefined(name='drop_path') if l_0_drop_path is missing else l_0_drop_path), 'formula'))
    yield '\n\n\n'

blocks = {}
debug_info = '4=13'