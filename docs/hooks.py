"""mkdocs hooks (mkdocs.yml, `hooks:`): the Sphinx roles of resdsl's docstrings
(:class:`SpecError`, :func:`load`, ...), which mkdocstrings leaves as text, shown as the code
they name."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):(<code>)")


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(r"\1", html)
