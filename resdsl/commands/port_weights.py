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
    from resdsl.cli import EXIT_USAGE, _report
    from resdsl.driver import analyze_file

    (src, src_path), (dst, dst_path) = source, target
    if src == dst:
        raise click.UsageError("--from and --to name the same framework")
    if dst == "keras" and not dst_path.endswith(".weights.h5"):
        raise click.BadParameter("Keras weights files end in `.weights.h5`", param_hint="--to")
    if src == "keras" and not src_path.endswith(".weights.h5"):
        raise click.BadParameter("Keras weights files end in `.weights.h5`", param_hint="--from")
    if not os.path.isfile(src_path):
        click.echo(f"error: no such file `{src_path}`", err=True)
        sys.exit(EXIT_USAGE)
    result = analyze_file(spec)
    status = _report([result], "text")
    if not result.ok:
        sys.exit(status)
    network = result.network

    from resdsl import weights

    # The source is read (and checked against the spec) before the target's framework is
    # imported: a file that is not this network's weights fails without starting TensorFlow.
    try:
        if src == "torch":
            state = weights.load_torch_checkpoint(src_path)
            # The classifier is sized by the weights, as the Keras reader and eval do.
            classes = weights.classifier_size(state, network)
            shapes = weights.state_dict_shapes(network, classes)
            problem = weights.state_problem(state, shapes, spec)
            if problem:
                raise weights.PortError(problem)
            module = weights.build_generated(network, "keras")
            keras_model = module.build_model(num_classes=classes)
            weights.state_dict_to_keras(state, keras_model, weights.layer_pairs(network))
            weights.save_keras_weights(keras_model, dst_path)
        else:
            state, _ = weights.read_keras_weights(src_path, network)
            weights.save_torch_state(state, dst_path)
    except weights.UnreadableWeights as error:
        click.echo(f"error: cannot read `{src_path}`: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except weights.PortError as error:
        # The spec is fine (it checked); the weights file is not this network's: a problem
        # with an input file, status 2, as the README reserves 1 for specs with errors.
        click.echo(f"error: `{src_path}` does not fit {spec}: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except (OSError, ValueError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        click.echo(f"error: cannot port `{src_path}`: {message}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {dst_path}", err=True)
