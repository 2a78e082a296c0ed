from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'shortcut.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_signature = resolve('signature')
    l_0_doc = resolve('doc')
    l_0_body = resolve('body')
    pass
    for l_1_line in (undefined(name='signature') if l_0_signature is missing else l_0_signature):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '    """'
    yield str((undefined(name='doc') if l_0_doc is missing else l_0_doc))
    yield '"""\n'
    for l_1_line in (undefined(name='body') if l_0_body is missing else l_0_body):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing

blocks = {}
debug_info = '1=14&2=17&4=21&5=23&6=26'