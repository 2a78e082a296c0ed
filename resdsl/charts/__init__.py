"""resdsl's pictures, drawn with matplotlib so that they read as the field's figures do (timm's,
pycls's, the papers'): real ticks, a light grid, legends outside the data.

One module a concern: :mod:`.style` (what every chart shares: the palette, the paper's line
styles, the legend outside the axes, saving to PNG, SVG or PDF), :mod:`.curves` (training
curves, one run's or several overlaid: `OUT/curves.png`, `resdsl plot`, `compare.png`),
:mod:`.confusion` (`eval --confusion`) and :mod:`.signal` (`summary --signal --png`).

Figures are :class:`matplotlib.figure.Figure` objects on the Agg canvas, made without pyplot:
no window can open, nothing global is left behind, and a test can read a figure's lines, labels
and legend before it is saved. Only the commands that draw import this package (and matplotlib);
`check` and `compile` never do.
"""
