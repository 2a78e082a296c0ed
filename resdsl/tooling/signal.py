"""Signal propagation at initialisation (`resdsl summary --signal`), after Brock et al. (2021,
"Characterizing signal propagation to close the performance gap in unnormalized ResNets").

For every block of the generated PyTorch model, freshly initialised and in training mode (norms
use the batch's statistics, as when training starts), on one batch of random or given images:

* the average channel squared mean of the block's output: each channel's mean over the batch and
  the pixels, squared, averaged over the channels;
* the average channel variance of the block's output (each channel's variance, biased, over the
  batch and the pixels, averaged over the channels);
* the residual branch's variance, the same statistic of the branch's output before it meets the
  shortcut (a plain block's branch is the block);
* the norm of the gradient of a mean-squared loss on random targets with respect to the block's
  input, from one backward pass.

A plain network's variance and gradients collapse or explode with depth where a residual one's
grow linearly and stay bounded (the paper's argument: `d loss / d x_l` is `d loss / d x_L`
times `1 + d/dx_l sum F`). The statistics are read by forward hooks on the blocks and on each
branch's last layer (named by the IR), so one forward and one backward pass give all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from resdsl.ir import ActLayer, Block, Network


@dataclass(frozen=True)
class BlockSignal:
    block: str  # the PyTorch path: `layer1.0`
    out_shape: str
    squared_mean: float  # average channel squared mean of the output
    variance: float  # average channel variance of the output
    branch_variance: float  # average channel variance of the residual branch
    grad_norm: float  # of the loss with respect to the block's input

    def as_dict(self) -> dict:
        return asdict(self)


def _channel_stats(x) -> tuple[float, float]:
    """(average channel squared mean, average channel variance) of NCHW activations."""
    x = x.detach().double()
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    return float((mean**2).mean()), float(var.mean())


def branch_end(block: Block) -> str | None:
    """The PyTorch path, inside its block, of the layer whose output is the residual branch's:
    the branch's last layer (None where that is the activation module the block shares)."""
    last = block.branch[-1] if block.branch else None
    if last is None or isinstance(last, ActLayer):
        return None
    return last.torch


def signal_propagation(
    network: Network, batch: int = 8, seed: int = 0, images=None, model=None
) -> list[BlockSignal]:
    """Each block's signal statistics at initialisation (see the module's docstring). `images`
    (NCHW) replace the random batch; the model (unless `model`, the generated PyTorch model of
    `network`, is given), input and targets are drawn from `seed`."""
    import torch

    from resdsl.interop.weights import build_generated

    torch.manual_seed(seed)
    if model is None:
        model = build_generated(network, "torch").build_model()
    model.train()
    for module in model.modules():  # what is random in training, other than the batch
        if isinstance(module, torch.nn.Dropout) or type(module).__name__ == "DropPath":
            module.eval()
    c, h, w = network.input.channels, network.input.height, network.input.width
    generator = torch.Generator().manual_seed(seed)
    x = images if images is not None else torch.randn(batch, c, h, w, generator=generator)
    seen: dict[str, dict] = {}
    handles = []
    for _, stage, position, block in network.blocks():
        name = stage.torch_prefix(position)
        module = model.get_submodule(name)
        record = seen.setdefault(name, {})

        def before(_module, args, record=record):
            (inputs,) = args[:1]
            inputs.retain_grad()
            record["input"] = inputs

        def after(_module, _args, output, record=record):
            record["output"] = output.detach().clone()  # a later layer may work in place

        def branch(_module, _args, output, record=record):
            record["branch"] = output.detach().clone()

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
        end = branch_end(block)
        if end is not None:
            handles.append(module.get_submodule(end).register_forward_hook(branch))
    try:
        x = x.clone().requires_grad_(True)
        logits = model(x)
        targets = torch.randn(logits.shape, generator=generator)
        torch.nn.functional.mse_loss(logits, targets).backward()
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for name, record in seen.items():
        output = record["output"]
        squared_mean, variance = _channel_stats(output)
        _, branch_variance = _channel_stats(record.get("branch", output))
        grad = record["input"].grad
        rows.append(
            BlockSignal(
                block=name,
                out_shape="x".join(str(n) for n in output.shape[1:]),
                squared_mean=squared_mean,
                variance=variance,
                branch_variance=branch_variance,
                grad_norm=float(grad.double().norm()) if grad is not None else 0.0,
            )
        )
    return rows


HEADERS = ("block", "output", "squared mean", "variance", "branch variance", "grad norm")


def signal_text(network: Network, rows: list[BlockSignal]) -> str:
    """The table as plain text, a row per block: names left, numbers right."""
    cells = [HEADERS] + [(r.block, r.out_shape, *(f"{v:.4g}" for v in _values(r))) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]

    def line(row) -> str:
        return "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    title = f"{network.name}: signal propagation at initialisation, {len(rows)} blocks"
    return "\n".join([title, *map(line, cells)]) + "\n"


def _values(row: BlockSignal) -> tuple[float, float, float, float]:
    return row.squared_mean, row.variance, row.branch_variance, row.grad_norm
