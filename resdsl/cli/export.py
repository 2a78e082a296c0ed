"""`resdsl export SPEC --format onnx -o net.onnx`: a spec to an ONNX graph, through the torch
backend (the generated module is imported from memory, and its model exported with a dynamic
batch dimension)."""

from __future__ import annotations

import warnings

import click

from resdsl.cli._common import load_or_exit
from resdsl.ir import Network

OPSET = 17  # supported by torch's TorchScript exporter and every onnxruntime since 1.14


@click.command()
@click.argument("path")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx"]),
    default="onnx",
    show_default=True,
    help="the exchange format",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), required=True, help="write here (atomically)"
)
@click.option(
    "--opset",
    type=click.IntRange(11, 21),
    default=OPSET,
    show_default=True,
    help="ONNX opset version",
)
@click.option(
    "--weights",
    type=click.Path(),
    help="trained weights: a state dict or a checkpoint (`resdsl train`'s best.pt, "
    "torchvision's or timm's), read with weights_only=True; or Keras weights (best.weights.h5, "
    "a Keras checkpoint folder), ported",
)
def export(path: str, fmt: str, output: str, opset: int, weights: str | None) -> None:
    """Export a spec's PyTorch model to ONNX, with a dynamic batch.

    The model has fresh weights unless --weights gives trained ones (the classifier's size is
    read from them); batch norms in inference mode; input `input`, output `logits`.
    """
    from resdsl.cli.extras import require
    from resdsl.interop.weight_files import first_line, refuse

    network = load_or_exit(path)
    # torch.onnx serialises through the onnx package
    require("export", "export", "torch", "onnx")
    if weights is None:
        model = build_torch_model(network)
    else:
        model, _ = trained_model(network, path, weights)
    try:
        data = onnx_bytes(model, network, opset)
    except Exception as error:  # the exporter's failures come in many types
        refuse(f"ONNX export of `{path}` failed: {first_line(error)}", status=1)
    from resdsl.files import atomic_write

    try:
        atomic_write(output, data)
    except OSError as error:
        refuse(f"cannot write `{output}`: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


def trained_model(network: Network, spec: str, weights: str):
    """The model (in eval mode) with trained `weights` loaded strictly, its classifier sized by
    them, and the data record a `resdsl train` checkpoint keeps (or None). `weights` is a
    PyTorch checkpoint or state dict, or Keras weights (`resdsl train --backend keras`'s
    `best.weights.h5`, its `checkpoint/` folder) ported to the PyTorch model. The file is
    checked against the spec before the model is built (weight_files.read_trained): one that
    cannot be read or does not fit exits 2 with a line naming the first tensor that does not."""
    from resdsl.interop.weight_files import UnreadableWeights, read_trained, refuse
    from resdsl.interop.weights import PortError, classifier_size

    try:
        state, record = read_trained(weights, network, spec)
    except (OSError, UnreadableWeights) as error:
        reason = "no such file" if isinstance(error, FileNotFoundError) else str(error)
        refuse(f"cannot read `{weights}`: {reason}")
    except PortError as error:
        refuse(f"`{weights}` does not fit {spec}: {error}")
    model = build_torch_model(network, classifier_size(state, network))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # fits by name, shape and dtype; this guards what is left
        reason = str(error).strip().splitlines()[-1].strip()
        refuse(f"`{weights}` does not fit {spec}: {reason}")
    return model.eval(), record


def build_torch_model(network: Network, num_classes: int | None = None):
    """The model (in eval mode) that the generated torch module of `network` builds; the
    module is imported from memory."""
    from resdsl.codegen.backends import get_backend
    from resdsl.codegen.generated import import_source

    source = get_backend("torch").emit(network)
    module = import_source(
        source, f"_resdsl_generated_torch_{network.name}", f"<resdsl torch {network.source.file}>"
    )
    model = module.build_model(num_classes)
    return model.eval()


def onnx_bytes(model, network: Network, opset: int = OPSET) -> bytes:
    """The ONNX serialisation of `model` with input `input` and output `logits`, batch dynamic.

    The TorchScript-based exporter (`dynamo=False`) is used: for these straight-line
    convolutional models it is fast and exact, where the dynamo exporter adds seconds of
    tracing and a dependency on onnxscript.
    """
    import io

    import torch

    sample = torch.zeros(1, network.input.channels, network.input.height, network.input.width)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample,),
            buffer,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()
