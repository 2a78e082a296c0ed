from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'block.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_doc = resolve('doc')
    l_0_signature = resolve('signature')
    l_0_init = resolve('init')
    l_0_forward = resolve('forward')
    l_0_zero = resolve('zero')
    pass
    yield 'class '
    yield str((undefined(name='name') if l_0_name is missing else l_0_name))
    yield '(nn.Module):\n'
    for l_1_line in (undefined(name='doc') if l_0_doc is missing else l_0_doc):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '\n'
    for l_1_line in (undefined(name='signature') if l_0_signature is missing else l_0_signature):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '        super().__init__()\n'
    for l_1_line in (undefined(name='init') if l_0_init is missing else l_0_init):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n'
    for l_1_line in (undefined(name='forward') if l_0_forward is missing else l_0_forward):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    if (undefined(name='zero') if l_0_zero is missing else l_0_zero):
        pass
        yield '\n    def zero_init_last(self) -> None:\n        """Start the residual branch at zero, so the block begins as its shortcut."""\n'
        for l_1_attr in (undefined(name='zero') if l_0_zero is missing else l_0_zero):
            _loop_vars = {}
            pass
            yield '        nn.init.zeros_(self.'
            yield str(l_1_attr)
            yield '.weight)\n'
        l_1_attr = missing

blocks = {}
debug_info = '1=18&2=20&3=23&6=27&7=30&10=34&11=37&15=41&16=44&18=47&22=50&23=54'