from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'module.py.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_title = resolve('title')
    l_0_regenerate = resolve('regenerate')
    l_0_spec = resolve('spec')
    l_0_input = resolve('input')
    l_0_classes = resolve('classes')
    l_0_blocks = resolve('blocks')
    l_0_params = resolve('params')
    l_0_init_scheme = resolve('init_scheme')
    l_0_zero_note = resolve('zero_note')
    l_0_ordered_dict = resolve('ordered_dict')
    l_0_callable = resolve('callable')
    l_0_functional = resolve('functional')
    l_0_has_norm = resolve('has_norm')
    l_0_norm_kind = resolve('norm_kind')
    l_0_norm_groups = resolve('norm_groups')
    l_0_eps = resolve('eps')
    l_0_group_norm = resolve('group_norm')
    l_0_norm_group_size = resolve('norm_group_size')
    l_0_momentum = resolve('momentum')
    l_0_standardized = resolve('standardized')
    l_0_conv_eps = resolve('conv_eps')
    l_0_drop_path = resolve('drop_path')
    l_0_drop_path_rate = resolve('drop_path_rate')
    l_0_total_blocks = resolve('total_blocks')
    l_0_pad_channels = resolve('pad_channels')
    l_0_blur_pool = resolve('blur_pool')
    l_0_make_divisible = resolve('make_divisible')
    l_0_limits = resolve('limits')
    l_0_squeeze_excite = resolve('squeeze_excite')
    l_0_eca = resolve('eca')
    l_0_global_context = resolve('global_context')
    l_0_bilinear = resolve('bilinear')
    l_0_aggregated = resolve('aggregated')
    l_0_conv_norm_act = resolve('conv_norm_act')
    l_0_selective_kernel = resolve('selective_kernel')
    l_0_split_attention = resolve('split_attention')
    l_0_from_input = resolve('from_input')
    l_0_plugin_helpers = resolve('plugin_helpers')
    l_0_block_classes = resolve('block_classes')
    l_0_functions = resolve('functions')
    l_0_make_stage = resolve('make_stage')
    l_0_make_stage_doc = resolve('make_stage_doc')
    l_0_stride_last = resolve('stride_last')
    l_0_first_dilation = resolve('first_dilation')
    l_0_first_key = resolve('first_key')
    l_0_downsample = resolve('downsample')
    l_0_add_block = resolve('add_block')
    l_0_stage_sequential = resolve('stage_sequential')
    l_0_model = resolve('model')
    l_0_network = resolve('network')
    l_0_source = resolve('source')
    l_0_stem_init = resolve('stem_init')
    l_0_stage_init = resolve('stage_init')
    l_0_head_init = resolve('head_init')
    l_0_init_doc = resolve('init_doc')
    l_0_glorot = resolve('glorot')
    l_0_norm_class = resolve('norm_class')
    l_0_zero_last = resolve('zero_last')
    l_0_forward_features = resolve('forward_features')
    l_0_stem_forward = resolve('stem_forward')
    l_0_stage_loop = resolve('stage_loop')
    l_0_forward = resolve('forward')
    pass
    yield '"""'
    yield str((undefined(name='title') if l_0_title is missing else l_0_title))
    yield '\n\nDo not edit: regenerate with `'
    yield str((undefined(name='regenerate') if l_0_regenerate is missing else l_0_regenerate))
    yield '`.\n\n'
    yield str((undefined(name='spec') if l_0_spec is missing else l_0_spec))
    yield '\nInput '
    yield str((undefined(name='input') if l_0_input is missing else l_0_input))
    yield ', '
    yield str((undefined(name='classes') if l_0_classes is missing else l_0_classes))
    yield ' classes, '
    yield str((undefined(name='blocks') if l_0_blocks is missing else l_0_blocks))
    yield ' blocks, '
    yield str((undefined(name='params') if l_0_params is missing else l_0_params))
    yield ' parameters.\nWeights: '
    yield str((undefined(name='init_scheme') if l_0_init_scheme is missing else l_0_init_scheme))
    yield ' initialisation.\n'
    if (undefined(name='zero_note') if l_0_zero_note is missing else l_0_zero_note):
        pass
        yield str((undefined(name='zero_note') if l_0_zero_note is missing else l_0_zero_note))
        yield '\n'
    yield '\nStandalone: this module needs only torch. `build_model(num_classes)` returns the model.\n"""\n\nfrom __future__ import annotations\n\n'
    if (undefined(name='ordered_dict') if l_0_ordered_dict is missing else l_0_ordered_dict):
        pass
        yield 'from collections import OrderedDict\n'
    if (undefined(name='callable') if l_0_callable is missing else l_0_callable):
        pass
        yield 'from collections.abc import Callable\n'
    if ((undefined(name='ordered_dict') if l_0_ordered_dict is missing else l_0_ordered_dict) or (undefined(name='callable') if l_0_callable is missing else l_0_callable)):
        pass
        yield '\n'
    yield 'import torch\n'
    if (undefined(name='functional') if l_0_functional is missing else l_0_functional):
        pass
        yield 'import torch.nn.functional as F\n'
    yield 'from torch import nn\n\n'
    if ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and ((undefined(name='norm_kind') if l_0_norm_kind is missing else l_0_norm_kind) == 'evonorm_s0')):
        pass
        yield 'NORM_GROUPS = '
        yield str((undefined(name='norm_groups') if l_0_norm_groups is missing else l_0_norm_groups))
        yield '\nNORM_EPS = '
        yield str((undefined(name='eps') if l_0_eps is missing else l_0_eps))
        yield '\n'
    elif ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and ((undefined(name='norm_kind') if l_0_norm_kind is missing else l_0_norm_kind) == 'frn')):
        pass
        yield 'NORM_EPS = '
        yield str((undefined(name='eps') if l_0_eps is missing else l_0_eps))
        yield '\n'
    elif (((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and (undefined(name='group_norm') if l_0_group_norm is missing else l_0_group_norm)) and (undefined(name='norm_group_size') if l_0_norm_group_size is missing else l_0_norm_group_size)):
        pass
        yield 'NORM_GROUP_SIZE = '
        yield str((undefined(name='norm_group_size') if l_0_norm_group_size is missing else l_0_norm_group_size))
        yield '  # channels a group: the groups grow with the width\nNORM_EPS = '
        yield str((undefined(name='eps') if l_0_eps is missing else l_0_eps))
        yield '\n'
    elif ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and (undefined(name='group_norm') if l_0_group_norm is missing else l_0_group_norm)):
        pass
        yield 'NORM_GROUPS = '
        yield str((undefined(name='norm_groups') if l_0_norm_groups is missing else l_0_norm_groups))
        yield '\nNORM_EPS = '
        yield str((undefined(name='eps') if l_0_eps is missing else l_0_eps))
        yield '\n'
    elif (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield 'NORM_EPS = '
        yield str((undefined(name='eps') if l_0_eps is missing else l_0_eps))
        yield '\nNORM_MOMENTUM = '
        yield str((undefined(name='momentum') if l_0_momentum is missing else l_0_momentum))
        yield '\n'
    if (undefined(name='standardized') if l_0_standardized is missing else l_0_standardized):
        pass
        yield 'CONV_EPS = '
        yield str((undefined(name='conv_eps') if l_0_conv_eps is missing else l_0_conv_eps))
        yield "  # weight standardization's, added to the weights' variance\n"
    if (undefined(name='drop_path') if l_0_drop_path is missing else l_0_drop_path):
        pass
        yield 'DROP_PATH_RATE = '
        yield str((undefined(name='drop_path_rate') if l_0_drop_path_rate is missing else l_0_drop_path_rate))
        yield '  # stochastic depth of the last block; linear from 0\nTOTAL_BLOCKS = '
        yield str((undefined(name='total_blocks') if l_0_total_blocks is missing else l_0_total_blocks))
        yield '\n'
    yield '\n\n'
    if ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and ((undefined(name='norm_kind') if l_0_norm_kind is missing else l_0_norm_kind) == 'evonorm_s0')):
        pass
        template = environment.get_template('evonorm.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
        yield '\n\ndef norm(channels: int) -> EvoNormS0:\n    return EvoNormS0(channels)\n'
    elif ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and ((undefined(name='norm_kind') if l_0_norm_kind is missing else l_0_norm_kind) == 'frn')):
        pass
        template = environment.get_template('frn.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
        yield '\n\ndef norm(channels: int) -> FilterResponseNorm:\n    return FilterResponseNorm(channels)\n'
    elif (((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and (undefined(name='group_norm') if l_0_group_norm is missing else l_0_group_norm)) and (undefined(name='norm_group_size') if l_0_norm_group_size is missing else l_0_norm_group_size)):
        pass
        yield 'def norm(channels: int) -> nn.GroupNorm:\n    return nn.GroupNorm(channels // NORM_GROUP_SIZE, channels, eps=NORM_EPS)\n'
    elif ((undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm) and (undefined(name='group_norm') if l_0_group_norm is missing else l_0_group_norm)):
        pass
        yield 'def norm(channels: int) -> nn.GroupNorm:\n    return nn.GroupNorm(NORM_GROUPS, channels, eps=NORM_EPS)\n'
    elif (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield 'def norm(channels: int) -> nn.BatchNorm2d:\n    return nn.BatchNorm2d(channels, eps=NORM_EPS, momentum=NORM_MOMENTUM)\n'
    if (undefined(name='drop_path') if l_0_drop_path is missing else l_0_drop_path):
        pass
        yield '\n\n'
        template = environment.get_template('drop_path.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='pad_channels') if l_0_pad_channels is missing else l_0_pad_channels):
        pass
        yield '\n\nclass PadChannels(nn.Module):\n    """Zero channels on both sides of the input\'s, from `in_channels` to `out_channels` (half\n    before, rounded down): the parameter-free shortcut (option A).\n    """\n\n    def __init__(self, in_channels: int, out_channels: int) -> None:\n        super().__init__()\n        grow = out_channels - in_channels\n        self.pad = (0, 0, 0, 0, grow // 2, grow - grow // 2)\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        return F.pad(x, self.pad)\n'
    if (undefined(name='standardized') if l_0_standardized is missing else l_0_standardized):
        pass
        yield '\n\n'
        template = environment.get_template('std_conv.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='blur_pool') if l_0_blur_pool is missing else l_0_blur_pool):
        pass
        yield '\n\n'
        template = environment.get_template('blur_pool.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='make_divisible') if l_0_make_divisible is missing else l_0_make_divisible):
        pass
        yield '\n\n'
        if (undefined(name='limits') if l_0_limits is missing else l_0_limits):
            pass
            yield 'def make_divisible(\n    value: float, divisor: int, round_limit: float = 0.0, minimum: int | None = None\n) -> int:\n    """`value` to the nearest multiple of `divisor`, at least `minimum` (or `divisor`), and one\n    more multiple where that falls below `round_limit` times `value` (timm\'s rounding of\n    attention widths).\n    """\n    rounded = max(minimum or divisor, int(value + divisor / 2) // divisor * divisor)\n    return rounded + divisor if rounded < round_limit * value else rounded\n'
        else:
            pass
            yield 'def make_divisible(value: float, divisor: int) -> int:\n    """`value` to the nearest multiple of `divisor`, at least `divisor` (timm\'s rounding of\n    squeeze-excitation\'s width)."""\n    return max(divisor, int(value + divisor / 2) // divisor * divisor)\n'
    if (undefined(name='squeeze_excite') if l_0_squeeze_excite is missing else l_0_squeeze_excite):
        pass
        yield '\n\n'
        template = environment.get_template('squeeze_excite.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='eca') if l_0_eca is missing else l_0_eca):
        pass
        yield '\n\n'
        template = environment.get_template('eca.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='global_context') if l_0_global_context is missing else l_0_global_context):
        pass
        yield '\n\n'
        template = environment.get_template('global_context.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='bilinear') if l_0_bilinear is missing else l_0_bilinear):
        pass
        yield '\n\n'
        template = environment.get_template('bilinear_attention.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='aggregated') if l_0_aggregated is missing else l_0_aggregated):
        pass
        yield '\n\n'
        template = environment.get_template('aggregated_paths.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='conv_norm_act') if l_0_conv_norm_act is missing else l_0_conv_norm_act):
        pass
        yield '\n\n'
        template = environment.get_template('conv_norm_act.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='selective_kernel') if l_0_selective_kernel is missing else l_0_selective_kernel):
        pass
        yield '\n\n'
        template = environment.get_template('selective_kernel.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='split_attention') if l_0_split_attention is missing else l_0_split_attention):
        pass
        yield '\n\n'
        template = environment.get_template('split_attention.py.j2', 'module.py.j2')
        gen = template.root_render_func(template.new_context(context.get_all(), True, {}))
        try:
            for event in gen:
                yield event
        finally: gen.close()
    if (undefined(name='from_input') if l_0_from_input is missing else l_0_from_input):
        pass
        yield '\n\nclass FromInput(nn.Sequential):\n    """A shortcut that reads a pre-activation block\'s input rather than its pre-activated\n    input (keras\' ResNetV2 subsamples the input itself; projections read the pre-activation).\n    """\n'
    for l_1_helper in (undefined(name='plugin_helpers') if l_0_plugin_helpers is missing else l_0_plugin_helpers):
        _loop_vars = {}
        pass
        yield '\n\n'
        yield str(l_1_helper)
        yield '\n'
    l_1_helper = missing
    for l_1_block in (undefined(name='block_classes') if l_0_block_classes is missing else l_0_block_classes):
        _loop_vars = {}
        pass
        yield '\n\n'
        yield str(l_1_block)
    l_1_block = missing
    for l_1_function in (undefined(name='functions') if l_0_functions is missing else l_0_functions):
        _loop_vars = {}
        pass
        yield '\n\n'
        yield str(l_1_function)
    l_1_function = missing
    if (undefined(name='drop_path') if l_0_drop_path is missing else l_0_drop_path):
        pass
        yield '\n\ndef drop_path_rate(index: int) -> float:\n    """Stochastic depth of block `index`: linear from 0 at the first block to the last\'s."""\n    if TOTAL_BLOCKS <= 1:\n        return DROP_PATH_RATE\n    return DROP_PATH_RATE * index / (TOTAL_BLOCKS - 1)\n'
    yield '\n\n'
    for l_1_line in (undefined(name='make_stage') if l_0_make_stage is missing else l_0_make_stage):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    for l_1_line in (undefined(name='make_stage_doc') if l_0_make_stage_doc is missing else l_0_make_stage_doc):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    if (undefined(name='stride_last') if l_0_stride_last is missing else l_0_stride_last):
        pass
        yield '    strided = blocks - 1 if stride_last else 0\n'
    if (undefined(name='first_dilation') if l_0_first_dilation is missing else l_0_first_dilation):
        pass
        yield '    # The first block dilates as the stage before (torchvision\'s `previous_dilation`).\n    first_options = {**options, "'
        yield str((undefined(name='first_key') if l_0_first_key is missing else l_0_first_key))
        yield '": first_dilation} if first_dilation else options\n'
    yield '    layers = []\n    for index in range(blocks):\n        channels = in_channels if index == 0 else out_channels\n'
    if (undefined(name='stride_last') if l_0_stride_last is missing else l_0_stride_last):
        pass
        yield '        block_stride = stride if index == strided else 1\n'
    else:
        pass
        yield '        block_stride = stride if index == 0 else 1\n'
    if (undefined(name='downsample') if l_0_downsample is missing else l_0_downsample):
        pass
        yield '        '
        yield str((undefined(name='downsample') if l_0_downsample is missing else l_0_downsample))
        yield '\n'
    for l_1_line in (undefined(name='add_block') if l_0_add_block is missing else l_0_add_block):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '    return '
    yield str((undefined(name='stage_sequential') if l_0_stage_sequential is missing else l_0_stage_sequential))
    yield '\n\n\nclass '
    yield str((undefined(name='model') if l_0_model is missing else l_0_model))
    yield '(nn.Module):\n    """'
    yield str((undefined(name='network') if l_0_network is missing else l_0_network))
    yield ', from '
    yield str((undefined(name='source') if l_0_source is missing else l_0_source))
    yield '."""\n\n    def __init__(self, num_classes: int = '
    yield str((undefined(name='classes') if l_0_classes is missing else l_0_classes))
    yield ') -> None:\n        super().__init__()\n'
    for l_1_line in (undefined(name='stem_init') if l_0_stem_init is missing else l_0_stem_init):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    for l_1_line in (undefined(name='stage_init') if l_0_stage_init is missing else l_0_stage_init):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    for l_1_line in (undefined(name='head_init') if l_0_head_init is missing else l_0_head_init):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '        self.reset_parameters()\n\n    def reset_parameters(self) -> None:\n        """'
    yield str((undefined(name='init_doc') if l_0_init_doc is missing else l_0_init_doc))
    yield '"""\n        for module in self.modules():\n'
    if (undefined(name='glorot') if l_0_glorot is missing else l_0_glorot):
        pass
        yield '            if isinstance(module, (nn.Conv2d, nn.Linear)):\n                nn.init.xavier_uniform_(module.weight)\n                if module.bias is not None:\n                    nn.init.zeros_(module.bias)\n'
    else:
        pass
        yield '            if isinstance(module, nn.Conv2d):\n                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")\n                if module.bias is not None:\n                    nn.init.zeros_(module.bias)\n'
    if (undefined(name='has_norm') if l_0_has_norm is missing else l_0_has_norm):
        pass
        yield '            elif isinstance(module, '
        yield str((undefined(name='norm_class') if l_0_norm_class is missing else l_0_norm_class))
        yield '):\n                nn.init.ones_(module.weight)\n                nn.init.zeros_(module.bias)\n'
    if (undefined(name='zero_last') if l_0_zero_last is missing else l_0_zero_last):
        pass
        yield '        for module in self.modules():\n            if hasattr(module, "zero_init_last"):\n                module.zero_init_last()\n'
    yield '\n    def forward_features(self, x: torch.Tensor) -> torch.Tensor:\n        """The feature map the head pools: the stem\'s and every stage\'s work (timm\'s name)."""\n'
    for l_1_line in (undefined(name='forward_features') if l_0_forward_features is missing else l_0_forward_features):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '\n    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:\n        """Every stage\'s output, in order: the feature pyramid a detector or a segmenter takes\n        from a backbone (timm\'s `features_only`)."""\n'
    for l_1_line in (undefined(name='stem_forward') if l_0_stem_forward is missing else l_0_stem_forward):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '        features = []\n'
    for l_1_line in (undefined(name='stage_loop') if l_0_stage_loop is missing else l_0_stage_loop):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '            x = stage(x)\n            features.append(x)\n        return features\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n'
    for l_1_line in (undefined(name='forward') if l_0_forward is missing else l_0_forward):
        _loop_vars = {}
        pass
        yield str(l_1_line)
        yield '\n'
    l_1_line = missing
    yield '\n\ndef build_model(num_classes: int | None = None) -> nn.Module:\n    """A freshly initialised '
    yield str((undefined(name='network') if l_0_network is missing else l_0_network))
    yield "; `num_classes` replaces the spec's "
    yield str((undefined(name='classes') if l_0_classes is missing else l_0_classes))
    yield '."""\n    return '
    yield str((undefined(name='model') if l_0_model is missing else l_0_model))
    yield '('
    yield str((undefined(name='classes') if l_0_classes is missing else l_0_classes))
    yield ' if num_classes is None else num_classes)\n'

blocks = {}
debug_info = '1=74&3=76&5=78&6=80&7=88&8=90&9=92&17=95&20=98&23=101&27=105&32=109&33=112&34=114&35=116&36=119&37=121&38=124&39=126&40=128&41=131&42=133&43=135&44=138&45=140&47=142&48=145&50=147&51=150&52=152&56=155&57=157&62=164&63=166&68=173&71=176&74=179&78=182&81=185&83=191&99=194&102=197&104=203&107=206&109=212&112=215&129=221&132=224&134=230&137=233&139=239&142=242&144=248&147=251&149=257&152=260&154=266&157=269&159=275&162=278&164=284&167=287&169=293&177=296&180=300&182=303&185=307&187=309&190=313&192=315&203=319&204=322&206=325&207=328&209=331&212=334&214=337&219=340&224=346&225=349&227=351&228=354&230=358&233=360&234=362&236=366&238=368&239=371&241=374&242=377&244=380&245=383&250=387&252=389&263=395&264=398&268=400&276=404&277=407&283=411&284=414&287=418&288=421&295=425&296=428&301=432&302=436'