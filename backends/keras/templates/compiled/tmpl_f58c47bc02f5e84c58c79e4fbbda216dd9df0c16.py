from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'make_divisible.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_limits = resolve('limits')
    pass
    if (undefined(name='limits') if l_0_limits is missing else l_0_limits):
        pass
        yield 'def make_divisible(value, divisor, round_limit=0.0, minimum=None):\n    """`value` to the nearest multiple of `divisor`, at least `minimum` (or `divisor`), and one\n    more multiple where that falls below `round_limit` times `value` (timm\'s rounding of\n    attention widths).\n    """\n    rounded = max(minimum or divisor, int(value + divisor / 2) // divisor * divisor)\n    return rounded + divisor if rounded < round_limit * value else rounded\n'
    else:
        pass
        yield 'def make_divisible(value, divisor):\n    """`value` to the nearest multiple of `divisor`, at least `divisor` (timm\'s rounding of\n    squeeze-excitation\'s width)."""\n    return max(divisor, int(value + divisor / 2) // divisor * divisor)\n'
    yield '\n\n'

blocks = {}
debug_info = '1=12'