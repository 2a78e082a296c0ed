"""`resdsl compare`: several specs trained with one recipe, one seed and one data order, and
their curves overlaid as the ResNet paper draws them (training error dashed, test error bold).

Each spec is a sub-run, `OUT/NAME/`, trained by `resdsl train` in a process of its own, so it
has everything a run has: checkpoints, `metrics.jsonl`, `result.json`, Ctrl-C saving, resuming.
A sub-run that finished (it wrote `result.json`) is kept; one that stopped is resumed; the others
start. Then `OUT/compare.json` holds each spec's training and validation error and loss per epoch,
`OUT/compare.png` the curves, and the terminal a table.

Exit status: 0 when every sub-run finished; 1 or 2 (a spec, an option, the data) as `train`
says for the first sub-run that failed; 130 after Ctrl-C (the running sub-runs saved a
checkpoint: the same command continues them).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import click

from resdsl.cli.train import train

COMPARE_JSON, COMPARE_PNG = "compare.json", "compare.png"
# `resdsl train`'s options, but for those compare sets for each sub-run itself: one recipe,
# checked once, here, before any sub-run starts.
_OWN = {"spec", "out", "resume", "init", "config"}
_RECIPE = [p for p in train.params if p.name not in _OWN]


def _with_recipe(command: click.Command) -> click.Command:
    command.params += [copy.copy(p) for p in _RECIPE]
    return command


@_with_recipe
@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="the comparison's folder: a sub-run per spec, compare.json, compare.png",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="sub-runs at a time, each with an equal share of the CPU threads",
)
@click.pass_context
def compare(
    ctx: click.Context, specs: tuple[str, ...], out: str, parallel: int, **_options
) -> None:
    """Train SPECS with one recipe (every other option is `resdsl train`'s, given to each) and
    compare their training and test error, epoch by epoch.

    \b
      resdsl compare specs/cifar/plain20.res specs/cifar/plain56.res \\
          specs/cifar/resnet20.res specs/cifar/resnet56.res --data digits --out runs/degradation
    """
    from resdsl.cli.extras import require_training

    require_training("compare", _options["backend"], _options["data"])
    recipe = _given_recipe(ctx)
    names = _names(specs)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        click.echo(f"error: cannot create `{out}`: {error.strerror or error}", err=True)
        sys.exit(2)
    runs = {name: os.path.join(out, name) for name in names}
    if parallel > 1 and "--threads" not in recipe:
        recipe += ["--threads", str(max(1, (os.cpu_count() or 1) // parallel))]
    status = _train_all(list(zip(specs, runs.values(), strict=True)), recipe, parallel, out)
    if status:
        sys.exit(status)
    curves = _curves(runs)
    table = _table(specs, runs, curves)
    from resdsl.charts.curves import curves_figure
    from resdsl.charts.style import write
    from resdsl.files import atomic_write

    try:
        atomic_write(
            os.path.join(out, COMPARE_JSON),
            json.dumps({"recipe": recipe, "specs": table}, indent=2) + "\n",
        )
        # The paper's picture (its Figures 1, 4 and 6): error against epochs, a colour a spec.
        drawn = {name: records for name, records in curves.items() if records}
        if drawn:
            write(curves_figure(drawn, panels=("error",)), os.path.join(out, COMPARE_PNG))
    except OSError as error:
        click.echo(f"error: cannot write in `{out}`: {error.strerror or error}", err=True)
        sys.exit(2)
    click.echo(_table_text(table), nl=False)
    click.echo(f"wrote {os.path.join(out, COMPARE_JSON)} and {COMPARE_PNG}", err=True)


def _given_recipe(ctx: click.Context) -> list[str]:
    """The training options given on the command line, as `resdsl train` takes them."""
    given = []
    for param in _RECIPE:
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if param.is_flag and param.secondary_opts:
            given.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            given += [param.opts[0]] if value else []
        else:
            given += [param.opts[0], str(value)]
    return given


def _names(specs: tuple[str, ...]) -> list[str]:
    """Each spec's sub-run name, its file's stem; where two stems agree, the folder's name and
    the stem (`cifar-resnet20`)."""
    stems = [os.path.splitext(os.path.basename(s))[0] for s in specs]
    names = []
    for spec, stem in zip(specs, stems, strict=True):
        if stems.count(stem) > 1:
            folder = os.path.basename(os.path.dirname(os.path.abspath(spec))) or "spec"
            stem = f"{folder}-{stem}"
        names.append(stem)
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise click.UsageError(f"two specs would share the sub-run `{twice}`: give each once")
    return names


def _command(spec: str, run: str, recipe: list[str]) -> list[str] | None:
    """The `resdsl train` command of a sub-run; None for one that finished."""
    if os.path.exists(os.path.join(run, "result.json")):
        return None
    resume = any(
        os.path.exists(os.path.join(run, name)) for name in ("checkpoint.pt", "checkpoint")
    )
    command = [sys.executable, "-m", "resdsl.cli.main", "train", spec, "--out", run, *recipe]
    return command + ["--resume"] * resume


def _train_all(jobs: list[tuple[str, str]], recipe: list[str], parallel: int, out: str) -> int:
    """Run the sub-runs, `parallel` at a time (each writes to `OUT/NAME.log` when several run
    together); the first failure's exit status, or 0. Ctrl-C reaches every sub-run (one process
    group), which saves and stops; this waits for them, then exits 130."""
    pending = [
        (spec, run, command) for spec, run in jobs if (command := _command(spec, run, recipe))
    ]
    running: list[tuple[str, subprocess.Popen, object]] = []
    status = 0
    try:
        while pending or running:
            while pending and len(running) < parallel and not status:
                spec, run, command = pending.pop(0)
                click.echo(f"compare: training {spec} in {run}", err=True)
                log = open(f"{run}.log", "ab") if parallel > 1 else None  # noqa: SIM115
                # A sub-run's progress goes to standard error: standard output is the table's.
                output = log if log is not None else sys.stderr
                process = subprocess.Popen(command, stdout=output, stderr=output)
                running.append((spec, process, log))
            for item in list(running):
                spec, process, log = item
                code = process.poll()
                if code is None:
                    continue
                running.remove(item)
                if log is not None:
                    log.close()
                if code and not status:
                    click.echo(f"error: training {spec} failed (exit {code})", err=True)
                    status = code
            if status and not running:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        for _, process, _ in running:
            process.wait()
        click.echo(f"interrupted: run the same command to continue ({out})", err=True)
        return 130
    return status


def _curves(runs: dict[str, str]) -> dict[str, list[dict]]:
    """Each sub-run's finished epochs, from its metrics.jsonl (a resumed epoch's record
    replaces the earlier one)."""
    from resdsl.charts.curves import epoch_records
    from resdsl.train.checkpoint import read_metrics

    return {name: epoch_records(read_metrics(run)) for name, run in runs.items()}


def _table(specs: tuple[str, ...], runs: dict[str, str], curves: dict[str, list[dict]]) -> list:
    """compare.json's entries: per spec and epoch, the training and validation error (1 -
    accuracy) and loss."""
    table = []
    for spec, (name, run) in zip(specs, runs.items(), strict=True):
        epochs = [
            {
                "epoch": record["epoch"],
                "train_error": 1 - record["train_acc"],
                "val_error": 1 - record["val_acc"],
                "train_loss": record["train_loss"],
                "val_loss": record["val_loss"],
            }
            for record in curves[name]
        ]
        table.append({"name": name, "spec": spec, "run": run, "epochs": epochs})
    return table


def _table_text(table: list[dict]) -> str:
    rows = [("spec", "epochs", "train error", "val error", "best val error")]
    for entry in table:
        epochs = entry["epochs"]
        if not epochs:
            rows.append((entry["name"], "0", "-", "-", "-"))
            continue
        last = epochs[-1]
        best = min(e["val_error"] for e in epochs)
        rows.append(
            (
                entry["name"],
                str(last["epoch"]),
                f"{last['train_error']:.2%}",
                f"{last['val_error']:.2%}",
                f"{best:.2%}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(lines) + "\n"
