"""`resdsl export SPEC --format onnx -o net.onnx`: a spec to an ONNX graph, through the torch
backend (the generated module is imported from memory, and its model exported with a dynamic
batch dimension).

The file says how to feed it, in its `metadata_props` (strings; lists and numbers as JSON):

- `input_size` ([C, H, W]), `input_layout` (NCHW), `pixel_scale` (1/255: 8-bit pixels to [0, 1]);
- `mean` and `std` (per channel, after that scaling), `classes` (the class names, in the
  logits' order), `eval_transform`, `crop_pct` and `interpolation` (how evaluation resizes an
  image), `trained_on`: where the weights come from a `resdsl train` run, which records them;
- `num_classes`, `network`, `spec` (the file's name), `spec_sha256` (its content's hash, as
  run.json and `resdsl ir` give it), `producer` (resdsl and its version): always.
"""

from __future__ import annotations

import math
import os
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
    record = None
    if weights is None:
        model = build_torch_model(network)
    else:
        model, record = trained_model(network, path, weights)
    try:
        data = onnx_bytes(model, network, opset)
        data = with_metadata(data, metadata(network, record, _outputs(data, network)))
    except Exception as error:  # the exporter's failures come in many types
        refuse(f"ONNX export of `{path}` failed: {first_line(error)}", status=1)
    from resdsl.files import atomic_write

    try:
        atomic_write(output, data)
    except OSError as error:
        refuse(f"cannot write `{output}`: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


def _outputs(data: bytes, network: Network) -> int:
    """The number of classes of the ONNX model `data`: its logits' width (the spec's where the
    graph leaves it open)."""
    import onnx

    dims = onnx.load_from_string(data).graph.output[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value) if len(dims) > 1 and dims[1].dim_value else network.classes


def metadata(network: Network, record: dict | None, num_classes: int) -> dict[str, str]:
    """The `metadata_props` of the ONNX file (see the module's docstring): what to feed the
    graph and what its outputs mean; `record` is the data record `resdsl train` keeps with its
    weights (normalisation, class names, augmentation), None for fresh weights."""
    import json

    import resdsl
    from resdsl.train.transforms import CROP_FRACTION

    shape = [network.input.channels, network.input.height, network.input.width]
    props = {
        "input_size": json.dumps(shape),
        "input_layout": "NCHW",
        "num_classes": str(num_classes),
        "network": network.name,
        "spec": os.path.basename(network.source.file),
        "spec_sha256": network.source.sha256,
        "producer": f"resdsl {resdsl.__version__}",
    }
    if not record:
        return props
    height, width = shape[1:]
    if record.get("augment") == "imagenet":
        short = math.floor(max(height, width) / CROP_FRACTION)
        transform = f"resize the shorter side to {short}, then the centre {height}x{width}"
        props["crop_pct"] = json.dumps(CROP_FRACTION)
    else:
        transform = f"resize to {height}x{width}"
        props["crop_pct"] = json.dumps(1.0)
    props |= {
        "pixel_scale": "1/255",
        "mean": json.dumps([float(m) for m in record.get("mean", [])]),
        "std": json.dumps([float(s) for s in record.get("std", [])]),
        "eval_transform": transform,
        "interpolation": "bilinear",
    }
    if record.get("classes"):
        from resdsl.train.data import class_labels

        props["classes"] = json.dumps(class_labels(record["classes"], num_classes))
    if record.get("name"):
        props["trained_on"] = str(record["name"])
    return props


def with_metadata(data: bytes, props: dict[str, str]) -> bytes:
    """The ONNX model `data` with `props` in its metadata_props."""
    import onnx

    model = onnx.load_from_string(data)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


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
