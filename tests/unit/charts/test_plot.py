"""Issue 33: `resdsl plot RUN... -o FILE` overlays the curves of runs made separately. The runs
here are folders of synthetic metrics.jsonl records (what training writes), not trainings;
what cannot be drawn is one line on standard error, exit 2, with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from train_helpers import ROOT, env, in_process

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


def make_run(folder, epochs: int = 4, network: str | None = None, extra: list | None = None):
    """A run folder of `epochs` finished epochs (and `extra` lines after them); with
    `network`, the result.json of a finished run."""
    folder.mkdir(parents=True)
    records = [
        {"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.2 * e, "val_loss": 2.2 / e,
         "val_acc": 0.19 * e, "lr": 0.1 / e, "step": 10 * e}
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    lines = [json.dumps(r) for r in records] + [json.dumps(x) for x in extra or []]
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if network:
        result = {"network": network, "data": "digits", "backend": "torch"}
        (folder / "result.json").write_text(json.dumps(result))
    return folder


@pytest.fixture
def drawn(monkeypatch):
    """The figures `resdsl plot` writes in this process, with their paths."""
    from resdsl.charts import style

    figures = []
    write = style.write

    def keep(figure, path):
        figures.append((figure, path))
        write(figure, path)

    monkeypatch.setattr(style, "write", keep)
    return figures


def test_plot_overlays_runs_one_colour_each(tmp_path, drawn):
    first = make_run(tmp_path / "resnet20-1", 4)
    second = make_run(tmp_path / "resnet56-1", 3, extra=[{"epoch": 4, "partial": True}])
    out = tmp_path / "both.png"
    status, stdout, stderr = in_process("plot", first, second, "-o", out)
    assert status == 0, stderr
    assert stdout == "" and stderr == f"wrote {out}\n"
    ((figure, path),) = drawn
    assert path == str(out) and figure.get_suptitle() == ""
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert texts[:2] == [
        "resnet20-1: best val error 24.00% (epoch 4)",
        "resnet56-1: best val error 43.00% (epoch 3)",  # its unfinished epoch 4 left out
    ]
    _, error, rate = figure.axes
    assert len(error.get_lines()) == 6 and len(rate.get_lines()) == 2
    with Image.open(out) as picture:
        picture.load()
        assert picture.format == "PNG"


def test_one_run_is_titled_by_its_network_and_folders_of_one_name_by_their_parents(tmp_path, drawn):
    run = make_run(tmp_path / "runs" / "r1", 2, network="resnet8")
    status, _, stderr = in_process("plot", run, "-o", tmp_path / "one.svg")
    assert status == 0, stderr
    figure, _ = drawn[-1]
    assert figure.get_suptitle() == "resnet8 on digits (torch)"
    assert (tmp_path / "one.svg").read_text().lstrip().startswith("<?xml")
    a = make_run(tmp_path / "a" / "run", 2)
    b = make_run(tmp_path / "b" / "run", 2)
    status, _, stderr = in_process("plot", a, b, "-o", tmp_path / "two.pdf")
    assert status == 0, stderr
    figure, _ = drawn[-1]
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert [t.split(":")[0] for t in texts[:2]] == ["a/run", "b/run"]
    assert (tmp_path / "two.pdf").read_bytes().startswith(b"%PDF")


def test_what_cannot_be_drawn_is_one_line_and_exit_2(tmp_path):
    run = make_run(tmp_path / "run", 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    started = make_run(tmp_path / "started", 0, extra=[{"epoch": 1, "partial": True}])
    comparison = tmp_path / "degradation"
    make_run(comparison / "plain20", 2)
    make_run(comparison / "resnet20", 2)
    (tmp_path / "file.txt").write_text("")
    out = tmp_path / "out"
    cases = {
        "missing folder": ([tmp_path / "nowhere"], "does not exist"),
        "a file": ([tmp_path / "file.txt"], "is not a folder"),
        "no metrics": ([empty], "holds no metrics.jsonl: not a training run's folder"),
        "a comparison": ([comparison], f"(it holds runs: {comparison / 'plain20'}, "),
        "no epoch yet": ([started], "has no finished epoch in metrics.jsonl yet"),
        "bad extension": ([run], "does not end in .png, .svg or .pdf"),
        "twice": ([run, f"{run}/"], "is given twice"),
    }
    for case, (runs, words) in cases.items():
        output = out / "x.jpg" if case == "bad extension" else tmp_path / "x.png"
        status, stdout, stderr = in_process("plot", *runs, "-o", output)
        assert status == 2 and stdout == "", case
        assert stderr.count("\n") == 1 and stderr.startswith("error: "), (case, stderr)
        assert words in stderr, (case, stderr)
        assert not output.exists(), case
    status, _, stderr = in_process("plot", run, "-o", out / "x.png")  # `out` does not exist
    assert status == 2 and stderr.startswith(f"error: cannot write `{out / 'x.png'}`: ")
    assert stderr.count("\n") == 1 and not out.exists()
    folder = tmp_path / "folder.png"
    folder.mkdir()
    status, _, stderr = in_process("plot", run, "-o", folder)
    assert status == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: cannot write `{folder}`: not a regular file")
    assert list(folder.iterdir()) == []


def test_the_command_runs_as_users_run_it(tmp_path):
    """`python -m resdsl plot`, a process of its own: the command is registered and draws."""
    run = make_run(tmp_path / "run", 3)
    done = subprocess.run(
        [sys.executable, "-m", "resdsl", "plot", str(run), "-o", str(tmp_path / "run.pdf")],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run.pdf").read_bytes().startswith(b"%PDF")
