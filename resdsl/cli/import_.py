"""`resdsl import`: a spec from a checkpoint, a weights file or a library model."""

from __future__ import annotations

import click

from resdsl.cli._common import input_option


@click.command("import")
@click.argument("source")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="write the spec here (atomically) instead of to standard output",
)
@click.option("--name", help="the network's name (default: from SOURCE)")
@click.option(
    "--input",
    "input_shape",
    metavar="CxHxW",
    callback=input_option,
    help="the input size (default: the library's, or the family's convention)",
)
@click.option(
    "--strides",
    metavar="S1,S2,...",
    callback=lambda ctx, param, value: _numbers(value, "--strides"),
    help="each stage's stride, in order (default: the family's convention)",
)
@click.option(
    "--dilations",
    metavar="D1,D2,...",
    callback=lambda ctx, param, value: _numbers(value, "--dilations"),
    help="each stage's dilation, in order (default: 1, or the module tree's)",
)
@click.option(
    "--stride-on",
    type=click.Choice(["1x1", "3x3"]),
    help="which bottleneck convolution strides (default: the family's convention)",
)
@click.option(
    "--plain",
    is_flag=True,
    help="the blocks add no shortcut (`shortcut none`): weights cannot tell a plain network "
    "from a residual one without projections",
)
def import_(
    source: str,
    output: str | None,
    name: str | None,
    input_shape,
    strides,
    dilations,
    stride_on,
    plain: bool,
) -> None:
    """Write the spec that reproduces SOURCE's architecture.

    \b
    SOURCE: a PyTorch state dict or checkpoint (.pt, .pth; read with weights_only=True),
    a .safetensors file, a Keras .weights.h5 or .keras file, or torchvision:NAME / timm:NAME.

    \b
      resdsl import timm:resnet50d -o resnet50d.res
      resdsl import runs/r50.pt --name r50 -o r50.res

    Everything the weights say (stem, stages, widths, groups, block kinds, shortcuts,
    attention, norms, classes) is read from them; the rest follows the naming scheme's
    convention and is listed in the spec's header as assumed. The spec is checked before it is
    written: its PyTorch model's state dict has SOURCE's tensors, name for name and shape for
    shape.
    """
    from resdsl.cli._common import EXIT_SPEC
    from resdsl.cli.extras import require

    require("import", "import", *_needs(source))
    from resdsl.interop.import_sources import ImportFailed, read
    from resdsl.interop.importer import Choices, default_name, infer
    from resdsl.interop.weight_files import UnreadableWeights, first_line, refuse

    choices = Choices(strides=strides, dilations=dilations, stride_on=stride_on, plain=plain)
    try:
        imported = infer(read(source), name or default_name(source), input_shape, choices)
    except UnreadableWeights as error:  # bad input the user must fix: usage status
        refuse(f"cannot read `{source}`: {error}")
    except ImportFailed as error:
        refuse(f"cannot import `{source}`: {error}", EXIT_SPEC)
    except (OSError, ValueError) as error:
        refuse(f"cannot read `{source}`: {first_line(error)}")
    if output is None:
        click.echo(imported.text, nl=False)
        return
    from resdsl.files import atomic_write

    try:
        atomic_write(output, imported.text)
    except OSError as error:
        refuse(f"cannot write `{output}`: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


def _needs(source: str) -> tuple[str, ...]:
    """The modules that read `source`: its library and PyTorch (a model is built on the meta
    device), safetensors, h5py (Keras files), or PyTorch (torch.save's files)."""
    library = source.partition(":")[0]
    if library in ("torchvision", "timm") and ":" in source:
        return ("torch", library)
    if source.endswith(".safetensors"):
        return ("safetensors", "numpy")
    if source.endswith((".weights.h5", ".keras")):
        return ("h5py",)
    return ("torch",)


def _numbers(value: str | None, option: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() and 1 <= int(p) <= 16 for p in parts):
        raise click.BadParameter(
            f"`{value}`: whole numbers from 1 to 16, comma-separated", param_hint=option
        )
    return tuple(int(p) for p in parts)
