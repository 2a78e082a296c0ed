"""The code planner (resdsl.codegen.plan): one plan that both backends render.

Both backends must show the same block structure for a spec: the plan's block classes are
PyTorch's block classes and Keras' block functions, one for one, and the values the plan makes
arguments are parameters in both.
"""

from __future__ import annotations

import ast
import glob

import pytest

import resdsl
from resdsl.codegen.arguments import Divisible, Sym
from resdsl.codegen.backends import get_backend
from resdsl.codegen.plan import TORCH_TESTS, Plan

# One bottleneck with 4, 8 and 16 groups in three stages: one class, `groups` its argument.
PER_STAGE_GROUPS = """\
network groups_per_stage {
  input    3x64x64
  classes  10
  stem     imagenet
  block    bottleneck(groups: 4, group_width: 16)
  shortcut B
  stage a: 1 x 64
  stage b: 1 x 128 / 2 { block bottleneck(groups: 8, group_width: 16) }
  stage c: 1 x 256 / 2 { block bottleneck(groups: 16, group_width: 16) }
}
"""

SPECS = sorted(glob.glob("specs/**/*.res", recursive=True)) + sorted(
    glob.glob("tests/support/torch_specs/*.res")
)


def _torch_classes(code: str) -> list[str]:
    """The block classes of a generated PyTorch module: the classes make_stage is given."""
    tree = ast.parse(code)
    return sorted(
        {
            node.args[0].id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", "") == "make_stage"
            and isinstance(node.args[0], ast.Name)
        }
    )


def _keras_functions(code: str, plan: Plan) -> list[str]:
    """The block functions of a generated Keras module: those its stack functions call on
    their tensor."""
    tree = ast.parse(code)
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    called = {
        node.func.id
        for stack in tree.body
        if isinstance(stack, ast.FunctionDef) and "stack" in stack.name
        for node in ast.walk(stack)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.args
        and getattr(node.args[0], "id", "") == "x"  # a block on the stage's tensor
    }
    return sorted(called & defined)


def test_per_stage_groups_are_one_class_in_both_backends():
    """The example of the redesign issue: per-stage groups 4, 8 and 16 give one block class in
    PyTorch and one block function in Keras, each taking `groups`, and the stage calls say 4, 8
    and 16."""
    network = resdsl.load(PER_STAGE_GROUPS)
    plan = Plan(network)
    assert plan.problems == []
    assert [cls.name for cls in plan.classes] == ["Bottleneck"]
    assert plan.classes[0].takes == ["groups"]
    assert [call.options["groups"] for call in plan.stages] == [4, 8, 16]

    torch_code = get_backend("torch").emit(network)
    keras_code = get_backend("keras").emit(network)
    assert _torch_classes(torch_code) == ["Bottleneck"]
    assert _keras_functions(keras_code, plan) == ["bottleneck_block"]
    keras_tree = ast.parse(keras_code)
    block = next(n for n in keras_tree.body if getattr(n, "name", "") == "bottleneck_block")
    assert "groups" in [a.arg for a in block.args.args]
    stacks = [
        node
        for node in ast.walk(keras_tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "stack"
    ]
    assert [
        next(ast.literal_eval(k.value) for k in call.keywords if k.arg == "groups")
        for call in stacks
    ] == [4, 8, 16]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.removesuffix(".res"))
def test_both_backends_render_the_plans_classes(path):
    """Every spec of the library: PyTorch's block classes and Keras' block functions are the
    plan's classes, by name."""
    network = resdsl.load(path)
    plan = Plan(network)
    used = [c for c in plan.classes if any(call.block is c for call in plan.stages)]
    torch_code = get_backend("torch").emit(network)
    keras_code = get_backend("keras").emit(network)
    assert _torch_classes(torch_code) == sorted(c.name for c in used)
    assert _keras_functions(keras_code, plan) == sorted(c.snake_name for c in used)


def test_a_shortcut_condition_is_worded_by_each_backend():
    """A case's condition is a template: PyTorch tests both widths, Keras the input's channels."""
    network = resdsl.load("specs/resnet50.res")
    plan = Plan(network)
    (function,) = plan.functions
    first = function.chain[0]
    assert first.condition(TORCH_TESTS) == "in_channels == out_channels and stride == 1"
    assert first.outcome is None  # the identity, tested first as torchvision does
    assert function.chain[-1].condition(TORCH_TESTS) is None


def test_an_argument_renders_under_each_backends_names():
    """A `Sym` or `Divisible` is one value, written in each backend's parameter names, and
    evaluates as the generated code computes it."""
    first = Sym("mid_channels", divisor=2)
    assert str(first) == "mid_channels // 2"
    assert first.render({"mid_channels": "filters"}) == "filters // 2"
    assert first.evaluate({"mid_channels": 64}) == 32
    se = Divisible(Sym("out_channels"), 1 / 16, 8)
    assert str(se) == "make_divisible(out_channels / 16, 8)"
    assert se.render({"out_channels": "out_filters"}) == "make_divisible(out_filters / 16, 8)"
    assert se.evaluate({"out_channels": 256}) == 16


def test_the_class_names_in_both_spellings():
    """`BasicBlock` is `basic_block`, a pre-activation bottleneck `preact_bottleneck_block`."""
    network = resdsl.load("specs/preact_resnet18.res")
    (cls,) = Plan(network).classes
    assert (cls.name, cls.snake_name) == ("PreActBasicBlock", "preact_basic_block")
    (cls,) = Plan(resdsl.load("specs/resnet50.res")).classes
    assert (cls.name, cls.snake_name) == ("Bottleneck", "bottleneck_block")
