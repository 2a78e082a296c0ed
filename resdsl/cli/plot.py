"""`resdsl plot RUN... -o FILE`: the curves of training runs made separately, overlaid in one
picture (loss, error and learning rate per epoch; a colour per run, training dashed, test bold,
each run's best epoch starred), the static counterpart of TensorBoard's comparison of runs.

A RUN is a folder `resdsl train` wrote (its metrics.jsonl); a run still training is drawn as
far as it has come. FILE's extension picks the format: .png, .svg or .pdf. What cannot be drawn
(a folder that does not exist or holds no metrics, another extension, a file that cannot be
written) is one line on standard error and exit 2, with nothing written.
"""

from __future__ import annotations

import os

import click

from resdsl.interop.weight_files import refuse


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--out",
    "output",
    required=True,
    type=click.Path(),  # a folder there is refused in one line when writing, as any failure
    help="the picture: FILE.png, FILE.svg or FILE.pdf",
)
def plot(runs: tuple[str, ...], output: str) -> None:
    """Overlay the curves of training runs (folders `resdsl train` wrote) in one picture.

    \b
      resdsl plot runs/resnet20-1 runs/resnet56-1 -o resnet20-56.svg
      resdsl plot runs/degradation/* -o degradation.pdf
    """
    from resdsl.cli.extras import require

    require("plot", "plot", "matplotlib")
    from resdsl.charts.curves import curves_figure, run_title
    from resdsl.charts.style import format_of, write

    try:
        format_of(output)
    except ValueError as error:
        refuse(str(error))
    curves = {name: _curves_of(run) for name, run in zip(_names(runs), runs, strict=True)}
    title = run_title(runs[0]) if len(runs) == 1 else None
    if title is not None:  # one run: named as its own curves.png names it
        curves = {title: next(iter(curves.values()))}
    try:
        write(curves_figure(curves, title=title), output)
    except OSError as error:
        refuse(f"cannot write `{output}`: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


def _curves_of(run: str) -> list[dict]:
    """The finished epochs of the run in folder `run`; exit 2 where there are none."""
    from resdsl.charts.curves import epoch_records
    from resdsl.train.checkpoint import METRICS, read_metrics

    if not os.path.isdir(run):
        refuse(f"`{run}` is not a folder" if os.path.exists(run) else f"`{run}` does not exist")
    if not os.path.isfile(os.path.join(run, METRICS)):
        inside = [path for path in _entries(run) if os.path.isfile(os.path.join(path, METRICS))]
        hint = f" (it holds runs: {', '.join(inside[:4])}{', ...' * (len(inside) > 4)})"
        refuse(f"`{run}` holds no {METRICS}: not a training run's folder{hint * bool(inside)}")
    records = epoch_records(read_metrics(run))
    if not records:
        refuse(f"`{run}` has no finished epoch in {METRICS} yet")
    return records


def _entries(folder: str) -> list[str]:
    """The folders in `folder`, sorted (none where it cannot be read)."""
    try:
        return sorted(entry.path for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return []


def _names(runs: tuple[str, ...]) -> list[str]:
    """Each run's name in the legend, its folder's; where two agree, with the folder above
    (`cifar/resnet20`), and where those agree too, the path as given. A folder given twice is
    an error."""
    paths = [os.path.normpath(os.path.abspath(run)) for run in runs]
    for number, path in enumerate(paths):
        if path in paths[:number]:
            refuse(f"`{runs[number]}` is given twice")
    names = [os.path.basename(path) for path in paths]
    names = [
        os.path.join(os.path.basename(os.path.dirname(path)), name)
        if names.count(name) > 1
        else name
        for path, name in zip(paths, names, strict=True)
    ]
    return names if len(set(names)) == len(names) else [os.path.normpath(r) for r in runs]
