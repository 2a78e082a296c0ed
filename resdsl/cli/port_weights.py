"""`resdsl port-weights`: weights of one spec's PyTorch model to its Keras model, or back."""

from __future__ import annotations

import os
import sys

import click

FRAMEWORK = click.Choice(["torch", "keras"])


@click.command("port-weights")
@click.argument("spec")
@click.option(
    "--from",
    "source",
    nargs=2,
    type=(FRAMEWORK, str),
    required=True,
    metavar="FRAMEWORK FILE",
    help="torch CKPT.pt or keras X.weights.h5",
)
@click.option(
    "--to",
    "target",
    nargs=2,
    type=(FRAMEWORK, str),
    required=True,
    metavar="FRAMEWORK FILE",
    help="keras OUT.weights.h5 or torch OUT.pt",
)
def port_weights(spec: str, source: tuple[str, str], target: tuple[str, str]) -> None:
    """Convert the weights of SPEC's PyTorch model to its Keras model, or back.

    \b
      resdsl port-weights specs/resnet50.res --from torch r50.pt --to keras r50.weights.h5
      resdsl port-weights specs/resnet50.res --from keras r50.weights.h5 --to torch r50.pt

    PyTorch checkpoints are read with torch.load(weights_only=True); outputs are written
    atomically.
    """
    from resdsl.cli._common import report
    from resdsl.driver import analyze_file
    from resdsl.interop.weight_files import first_line, refuse

    (src, src_path), (dst, dst_path) = source, target
    if src == dst:
        raise click.UsageError("--from and --to name the same framework")
    if dst == "keras" and not dst_path.endswith(".weights.h5"):
        raise click.BadParameter("Keras weights files end in `.weights.h5`", param_hint="--to")
    if src == "keras" and not src_path.endswith(".weights.h5"):
        raise click.BadParameter("Keras weights files end in `.weights.h5`", param_hint="--from")
    if not os.path.isfile(src_path):
        refuse(f"no such file `{src_path}`")
    from resdsl.cli.extras import require, require_keras

    require("port-weights", "torch", "torch")
    if dst == "keras":  # the Keras model is built to save its weights
        require_keras("port-weights")
    else:  # Keras weights are read with h5py alone
        require("port-weights", "keras", "h5py")
    result = analyze_file(spec)
    status = report([result], "text")
    if not result.ok:
        sys.exit(status)
    network = result.network

    from resdsl.interop import keras_files, weight_files, weights

    # The source is read and checked against the spec (shapes, the classifier's size, values)
    # before the target's model is built or its framework imported: a file that is not this
    # network's weights fails without starting TensorFlow, and never sizes a model.
    try:
        if src == "torch":
            state, _ = weight_files.read_torch_weights(src_path, network, spec)
            # The classifier is sized by the weights, as the Keras reader and eval do.
            module = weights.build_generated(network, "keras")
            keras_model = module.build_model(num_classes=weights.classifier_size(state, network))
            weights.state_dict_to_keras(state, keras_model, weights.layer_pairs(network))
            weights.save_keras_weights(keras_model, dst_path)
        else:
            state, _ = keras_files.read_keras_weights(src_path, network)
            weight_files.check_state(state, network, spec)
            weights.save_torch_state(state, dst_path)
    except weight_files.UnreadableWeights as error:
        refuse(f"cannot read `{src_path}`: {error}")
    except weights.PortError as error:
        # The spec is fine (it checked); the weights file is not this network's: a problem
        # with an input file, status 2, as the docs reserve 1 for specs with errors.
        refuse(f"`{src_path}` does not fit {spec}: {error}")
    except (OSError, ValueError, RuntimeError) as error:
        refuse(f"cannot port `{src_path}`: {first_line(error)}")
    click.echo(f"wrote {dst_path}", err=True)
