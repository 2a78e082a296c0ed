"""The stages of a generated PyTorch module: each stage's `make_stage` call in the model's
`__init__`, `make_stage` itself (torchvision's `_make_layer`: one call per stage with the real
block count) and the loop over the stages in `forward_features`."""

from __future__ import annotations

from resdsl.codegen.arguments import OPTION_DEFAULTS, OPTIONS
from resdsl.codegen.layout import INDENT, Call, docstring, layout
from resdsl.codegen.plan import StageCall


def stage_container(plan) -> str | None:
    """The model attribute that holds the stages in order (byobnet's `stages`: stage i is
    `stages.i`), or None where each stage is an attribute of its own (`layer1`)."""
    found = {call.attr.partition(".")[0] for call in plan.stages if "." in call.attr}
    if not found:
        return None
    container = found.pop()
    holder = stage_holder(plan)
    inner = f".{holder}" if holder else ""
    positions = [f"{container}.{i}{inner}" for i in range(len(plan.stages))]
    named = [f"{container}.{call.stage.name}" for call in plan.stages]  # torchvision's RegNet
    if found or [call.attr for call in plan.stages] not in (positions, named):
        plan.problem("stages named otherwise than one container's positions or one attribute each")
    return container


def stage_holder(plan) -> str | None:
    """The attribute of each stage that holds its blocks, where the stage is a module of its
    own (timm's ResNetV2 `stages.0.blocks`): `blocks`; None where the stage is its blocks."""
    parts = {tuple(call.attr.split(".")) for call in plan.stages}
    if all(len(p) == 3 and p[1].isdigit() for p in parts) and len({p[2] for p in parts}) == 1:
        return next(iter(parts))[2]
    return None


def _named_stages(plan) -> bool:
    """Whether the stage container holds its stages by name (`trunk_output.block1`)."""
    return any(not call.attr.rpartition(".")[2].isdigit() for call in plan.stages)


def block_key(plan) -> str | None:
    """How make_stage names its blocks, as the f-string that names block `index`: None where
    they are the stage Sequential's positions (torchvision's `layer1.0`), `f"b{index + 1}"`
    for timm's regnet.py (`s1.b1`), `f"{name}-{index}"` for torchvision's RegNets
    (`block1-0`, the stage's name passed as `name`). Checked against every block's name."""
    if not plan.stages:
        return None
    template = plan.stages[0].stage.block_names[0].rpartition(".")[2]
    if template == "{index}":
        key = None
    else:
        key = template.replace("{number}", "{index + 1}").replace("{stage}", "{name}")
    for call in plan.stages:
        stage = call.stage
        for index in range(call.blocks):
            expected = str(index) if key is None else _key(key, index, stage.name)
            if stage.torch_prefix(index) != f"{call.attr}.{expected}":
                plan.problem(f"block `{stage.torch_prefix(index)}`, which make_stage cannot name")
                return key
    return key


def _key(key: str, index: int, name: str) -> str:
    """What make_stage's f-string `key` gives block `index` of stage `name`."""
    text = key.replace("{index + 1}", str(index + 1)).replace("{index}", str(index))
    return text.replace("{name}", name)


def stage_init(plan) -> list[str]:
    """`self.layer1 = make_stage(...)` for each stage, or one
    `self.stages = nn.Sequential(make_stage(...), ...)`."""
    container = stage_container(plan)
    if container is None:
        return [
            line
            for call in plan.stages
            for line in layout(f"self.{call.attr} = ", stage_call(plan, call), 2)
        ]
    calls = tuple(stage_call(plan, call) for call in plan.stages)
    holder = stage_holder(plan)
    if holder is not None:  # each stage a module holding its blocks (timm's ResNetStage)
        calls = tuple(
            Call("nn.Sequential", (Call("OrderedDict", (Call(f"{holder}={c.head}", c.args),)),))
            for c in calls
        )
        return layout(f"self.{container} = ", Call("nn.Sequential", calls), 2)
    if _named_stages(plan):
        keyed = tuple(
            Call(f"{call.stage.name}={made.head}", made.args)
            for call, made in zip(plan.stages, calls, strict=True)
        )
        return layout(
            f"self.{container} = ", Call("nn.Sequential", (Call("OrderedDict", keyed),)), 2
        )
    return layout(f"self.{container} = ", Call("nn.Sequential", calls), 2)


def stage_call(plan, call: StageCall) -> Call:
    args = [call.block.name, f"blocks={call.blocks}"]
    if "{name}" in (plan.block_key or ""):
        args.append(f'name="{call.stage.name}"')
    args += [f"{k}={getattr(call, k)}" for k in ("in_channels", "mid_channels", "out_channels")]
    if call.stride != 1:
        args.append(f"stride={call.stride}")
    if call.stride_last:
        args.append("stride_last=True")
    args += [
        f"{name}={value}" for name, value in call.options.items() if value != OPTION_DEFAULTS[name]
    ]
    if call.first_dilation is not None:
        args.append(f"first_dilation={call.first_dilation}")
    if len(plan.functions) > 1:
        args.append(f"shortcut={call.function.name}")
    if plan.drop_path:
        args.append(f"first_index={call.first_index}")
    return Call("make_stage", tuple(args))


def make_stage(plan) -> dict:
    """make_stage's signature, docstring and the lines of its loop that vary."""
    several = len(plan.functions) > 1
    key = plan.block_key
    params = ["block: type[nn.Module]", "blocks: int"]
    if "{name}" in (key or ""):
        params.append("name: str")
    params += ["in_channels: int", "mid_channels: int", "out_channels: int"]
    if several:
        params.append("shortcut: Callable[[int, int, int], nn.Module | None]")
    if plan.drop_path:
        params.append("first_index: int")
    params.append("stride: int = 1")
    if plan.stride_last:
        params.append("stride_last: bool = False")
    if plan.first_dilation:
        params.append("first_dilation: int | None = None")
    if plan.options:
        params.append("**options: int")
    doc = "A stage, as torchvision's `_make_layer`: its first block takes `in_channels` and "
    doc += "`stride` (its last, with `stride_last`)." if plan.stride_last else "`stride`."
    if several:
        doc += " `shortcut` makes each block's downsample."
    if key is not None:
        doc += f' Block `index` is named `f"{key}"`.'
    if plan.options:
        names = ["groups", "dilation"]
        names += [
            n
            for n in OPTIONS
            if n not in (*names, "first_dilation") and any(n in c.takes for c in plan.classes)
        ]
        doc += f" `options` ({', '.join(names)}) go to every block"
        if not plan.first_dilation:
            doc += "."
        elif plan.two_dilations:
            doc += "; the first also takes `first_dilation`, the stage before's."
        else:
            doc += "; `first_dilation` replaces the first one's."
    block_args = ["channels", "mid_channels", "out_channels", "block_stride"]
    downsample = None
    if plan.downsample:
        function = "shortcut" if several else plan.functions[0].name
        downsample = f"downsample = {function}(channels, out_channels, block_stride)"
        block_args.append("downsample")
    if plan.drop_path:
        block_args.append("drop_path=drop_path_rate(first_index + index)")
    if plan.first_dilation:
        block_args.append("**(first_options if index == 0 else options)")
    elif plan.options:
        block_args.append("**options")
    made = Call("block", tuple(block_args))
    added = (made,) if key is None else (Call("", (f'f"{key}"', made)),)
    return {
        "make_stage": layout("def make_stage", Call("", tuple(params)), 0, " -> nn.Sequential:"),
        "make_stage_doc": docstring(doc, 1),
        "downsample": downsample,
        "add_block": layout("layers.append", Call("", added), 2),
        "stage_sequential": "nn.Sequential(*layers)"
        if key is None
        else "nn.Sequential(OrderedDict(layers))",
        "callable": several,
        "first_dilation": plan.first_dilation,
        # timm's convention passes it on, torchvision's replaces the first block's dilation
        "first_key": "first_dilation" if plan.two_dilations else "dilation",
    }


def stage_loop(plan) -> list[str]:
    """`for stage in (self.layer1, ...):`, laid out as ruff format would (a one-stage tuple keeps
    its comma)."""
    container = stage_container(plan)
    if container is not None:
        return [f"{INDENT * 2}for stage in self.{container}:"]
    attrs = tuple(f"self.{call.attr}" for call in plan.stages)
    if len(attrs) == 1:
        return [f"{INDENT * 2}for stage in ({attrs[0]},):"]
    return layout("for stage in ", Call("", attrs), 2, ":")
