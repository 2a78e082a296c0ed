"""The documentation: the README as a landing page, the site under docs/ (mkdocs), its generated
pages, its command examples, `resdsl explain`, and the site in a real headless browser.

The generated pages (a page per diagnostic code, the marked tables of the language, family and
diagnostics pages) must equal what :mod:`resdsl.tooling.docs` renders today; each `$ resdsl ...`
block of the README and of every page must be the command's real output, run beside the spec
files the same page shows. `RESDSL_UPDATE_GOLDEN=1` (`make golden`) rewrites both.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

import resdsl
from resdsl.cli.main import main
from resdsl.diagnostics.core import CODES
from resdsl.tooling import docs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
UPDATE = os.environ.get("RESDSL_UPDATE_GOLDEN") == "1"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --------------------------------------------------------------------------- generated pages


def test_generated_pages_are_current():
    if UPDATE:
        docs.main([])
    stale = [os.path.relpath(p, ROOT) for p in docs.stale(str(ROOT))]
    assert not stale, f"stale: {stale}; regenerate with `python -m resdsl.tooling.docs`"


def test_every_code_has_a_page_with_its_example_and_fix():
    for code in CODES.values():
        page = (DOCS / "diagnostics" / f"{code.code}.md").read_text("utf-8")
        assert page.startswith(f"# {code.code}: {code.title}\n")
        assert "## What it means" in page
        if code.example:
            assert f"[{code.code}]: " in page  # the rendered diagnostic, of this very code
            assert "## How to fix it\n\n" in page and "Traceback" not in page
    index = (DOCS / "diagnostics" / "index.md").read_text("utf-8")
    assert all(f"[{c}]({c}.md)" in index for c in CODES)


def test_marked_sections_hold_the_tables():
    language = (DOCS / "language.md").read_text("utf-8")
    from resdsl.language import schema

    assert all(f"| `{key}` |" in docs.marked(language, "reference") for key in schema.FIELDS)
    family = docs.marked((DOCS / "family.md").read_text("utf-8"), "coverage")
    assert "specs in `specs/timm/`." in family


def test_a_stale_page_is_found(tmp_path):
    """The staleness check can fail: a copy of docs/ with one page edited is reported."""
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("*.png", "*.svg"))
    page = tmp_path / "docs" / "diagnostics" / "E201.md"
    page.write_text(page.read_text("utf-8").replace("double", "triple"), "utf-8")
    (tmp_path / "docs" / "diagnostics" / "E999.md").write_text("# gone\n", "utf-8")
    language = tmp_path / "docs" / "language.md"
    language.write_text(language.read_text("utf-8").replace("| `classes` |", "| `klasses` |"))
    found = {os.path.relpath(p, tmp_path) for p in docs.stale(str(tmp_path))}
    assert found == {"docs/diagnostics/E201.md", "docs/diagnostics/E999.md", "docs/language.md"}


# --------------------------------------------------------------------------- command examples


def _examples(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A page's spec files (a ```res block whose first line is `# NAME.res: ...`) and command
    examples (a ```text block whose first line is `$ resdsl ...`, then its output)."""
    files, commands = {}, []
    for language, body in FENCE.findall(text):
        named = re.match(r"# ([\w.-]+\.res)\b", body)
        if language == "res" and named:
            files[named.group(1)] = body
        if language == "text" and body.startswith("$ resdsl "):
            command, _, output = body.partition("\n")
            commands.append((command, output))
    return files, commands


WITH_EXAMPLES = [p for p in [ROOT / "README.md", *PAGES] if _examples(p.read_text("utf-8"))[1]]


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=_id)
def test_command_examples_print_what_the_commands_print(path, tmp_path, monkeypatch):
    """Each `$ resdsl ...` block is the command's real output, run beside the page's spec files
    and the library (`specs/`)."""
    text = path.read_text("utf-8")
    files, commands = _examples(text)
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(tmp_path)
    for key in ("FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(key, raising=False)
    for command, expected in commands:
        result = _invoke(*shlex.split(command.removeprefix("$ resdsl ")))
        actual = result.output.rstrip("\n") + "\n"
        if UPDATE:
            text = text.replace(
                f"```text\n{command}\n{expected}```", f"```text\n{command}\n{actual}```"
            )
            continue
        assert actual == expected, f"{_id(path)}'s `{command}` is stale"
    if UPDATE:
        path.write_text(text, "utf-8")


def test_the_pages_show_the_diagnostics_and_the_summary():
    """The examples the tests above run are there: a diagnostic (README), several in one file
    and a summary (the site)."""
    readme = _examples((ROOT / "README.md").read_text("utf-8"))
    assert "bad.res" in readme[0] and "[E201]" in readme[1][0][1]
    everywhere = [c for p in PAGES for c, _ in _examples(p.read_text("utf-8"))[1]]
    assert "$ resdsl check typos.res" in everywhere
    assert "$ resdsl summary specs/resnet50.res" in everywhere


def test_gallery_summary_is_current():
    assert (
        _invoke("summary", str(ROOT / "specs/resnet50.res")).output
        == (DOCS / "resnet50-summary.txt").read_text()
    ), "regenerate: resdsl summary specs/resnet50.res > docs/resnet50-summary.txt"


# --------------------------------------------------------------------------- resdsl explain


def test_explain_prints_the_codes_page():
    result = _invoke("explain", "e201")
    assert result.exit_code == 0, result.output
    out = result.output
    for words in ("E201: halve the size, double the width", "What it means", "An example"):
        assert words in out
    assert "stage b: 2 x 16 / 2" in out and "How to fix it" in out
    assert "expected 32 channels" in out  # the rendered diagnostic, unwrapped
    assert "every code" not in out  # the site's links stay on the site


def test_explain_without_a_code_lists_every_code():
    result = _invoke("explain")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(CODES)
    assert "E201  error    halve the size, double the width" in lines


def test_explain_of_an_unknown_code_is_one_line_and_exit_2():
    result = _invoke("explain", "E2011")
    assert result.exit_code == 2
    assert result.output == (
        "error: no diagnostic code `E2011` (did you mean E201?); `resdsl explain` lists them\n"
    )


def test_every_help_line_ends_with_resdsl_explain():
    from resdsl.diagnostics.core import Diagnostic, render_json, render_text, sorted_diagnostics
    from resdsl.driver import analyze_text

    for code in CODES.values():
        if not code.example:
            continue
        result = analyze_text(code.example, "example.res")
        text = render_text(result.diagnostics, result.sources)
        helps = [line for line in text.splitlines() if line.lstrip().startswith("= help: ")]
        assert len(helps) == len(result.diagnostics)
        for line, d in zip(helps, sorted_diagnostics(result.diagnostics), strict=True):
            assert line.endswith(f"see `resdsl explain {d.code}`"), line
        assert "resdsl explain" not in render_json(result.diagnostics)  # text format only
    bare = render_text([Diagnostic("E001", "cannot read `x.res`", None)], {})
    assert bare == "error[E001]: cannot read `x.res`\n = help: see `resdsl explain E001`\n\n"


# --------------------------------------------------------------------------- the README


def test_readme_is_a_landing_page():
    text = (ROOT / "README.md").read_text("utf-8")
    lines = text.splitlines()
    assert len(lines) <= 250
    fence = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in fence] == ["make run", "make test"]
    assert text.index("make run") < text.index("\n## ")  # the opening, before any section
    assert "![" in text and "<!-- " not in text  # a picture; no generated sections left
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to a missing {target}"


def test_license_and_changelog():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    # The Apache Software Foundation's text, byte for byte (Debian's common-licenses/Apache-2.0).
    digest = hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest()
    assert digest == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/)" in changelog
    assert re.search(rf"^## \[{re.escape(project['version'])}\]", changelog, re.MULTILINE)
    assert "## [Unreleased]" in changelog


def test_site_url_is_where_the_editor_links():
    config = (ROOT / "mkdocs.yml").read_text()
    assert f"site_url: {docs.SITE_URL}\n" in config
    assert docs.code_url("E201") == f"{docs.SITE_URL}diagnostics/E201/"


def test_every_page_is_in_the_nav_or_a_code_page():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w/.-]+\.md)$", config, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in PAGES}
    codes = {f"diagnostics/{c}.md" for c in CODES}
    assert nav <= pages, f"the nav names missing pages: {sorted(nav - pages)}"
    assert pages - nav == codes, f"pages outside the nav: {sorted(pages - nav - codes)}"


# --------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `make docs` builds it (`mkdocs build --strict`: a broken link, a missing
    page or anchor, a docstring mkdocstrings cannot read fails the build)."""
    pytest.importorskip("mkdocs", reason="needs mkdocs (the docs extra)")
    pytest.importorskip("material", reason="needs mkdocs-material (the docs extra)")
    pytest.importorskip("mkdocstrings", reason="needs mkdocstrings (the docs extra)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    return out


def test_the_site_has_every_page(site):
    assert (site / "index.html").exists() and (site / "search" / "search_index.json").exists()
    for code in CODES:
        page = (site / "diagnostics" / code / "index.html").read_text("utf-8")
        assert f"{code}: " in page
    api = (site / "api" / "index.html").read_text("utf-8")
    assert "raises :class:" not in api and "elaborated network of a spec" in api  # mkdocstrings


def _chromium() -> tuple[str, str] | None:
    """The system's chromium and chromedriver (Debian's `chromium` and `chromium-driver`)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser(site):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the docs extra)")
    found = _chromium()
    if found is None:
        pytest.skip(
            "no chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
        )
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=found[1])
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        driver.quit()
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _resolves(site: Path, base: str, page_url: str, target: str) -> bool:
    """Whether an internal link or image of the page at `page_url` names a file of the built
    site, and an anchor of that page where it names one."""
    url = urllib.parse.urljoin(page_url, target)
    parts = urllib.parse.urlsplit(url)
    path = site / urllib.parse.unquote(parts.path.removeprefix(urllib.parse.urlsplit(base).path))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return False
    if parts.fragment and path.suffix == ".html":
        return f'id="{parts.fragment}"' in path.read_text("utf-8")
    return True


@pytest.mark.parametrize("page", ["", "diagnostics/E201/", "language/"])
def test_a_browser_opens_the_page(browser, site, page):
    """No console errors; every internal link and image resolves. The home page's screenshot
    is saved as build/docs-home.png."""
    from selenium.webdriver.common.by import By

    driver, base = browser
    driver.get(base + page)
    assert driver.title.endswith("resdsl")
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[href]")]
    images = [i.get_attribute("src") for i in driver.find_elements(By.CSS_SELECTOR, "img")]
    internal = [u for u in links + images if u and u.startswith(base)]
    assert internal, "no internal links"
    broken = [u for u in internal if not _resolves(site, base, driver.current_url, u)]
    assert not broken, f"{page or 'home'}: broken {broken}"
    loaded = driver.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)"
    )
    assert not loaded, f"images that did not load: {loaded}"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    if page == "":
        shot = ROOT / "build" / "docs-home.png"
        shot.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(shot))


def test_the_search_finds_a_code(browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver, base = browser
    driver.get(base)
    # The bounds only stop a hang, they time nothing: the page's script makes the search box
    # usable and loads the index in a web worker, and redraws the results as they come (an
    # element read while it is replaced is read again).
    wait = WebDriverWait(
        driver, 300, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    box = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input"))
    )
    box.click()
    box.send_keys("E201")

    def results(d):
        found = d.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")
        return [a.get_attribute("href") for a in found] or False

    hits = wait.until(results)
    # The first result is the code's own page (search highlights with `?h=e201`).
    assert urllib.parse.urlsplit(hits[0]).path == "/diagnostics/E201/", hits
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


# --------------------------------------------------------------------------- ONNX


def test_the_onnx_preprocessing_script_predicts_what_resdsl_predict_does(tmp_path):
    """docs/using-models.md's onnx_predict.py, on a model exported with a checkpoint's weights
    and data record, gives `resdsl predict`'s classes and probabilities."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    image_module = pytest.importorskip("PIL.Image")
    import numpy as np

    from resdsl.cli.export import build_torch_model

    page = (DOCS / "using-models.md").read_text("utf-8")
    script = next(b for lang, b in FENCE.findall(page) if b.startswith("# onnx_predict.py"))
    (tmp_path / "onnx_predict.py").write_text(script)
    spec = tmp_path / "small.res"
    spec.write_text(
        "network small {\n  input 3x40x48\n  classes 3\n  stem cifar\n  block basic\n"
        "  stage a: 1 x 8\n  stage b: 1 x 16 / 2\n}\n"
    )
    torch.manual_seed(0)
    model = build_torch_model(resdsl.load(spec))
    record = {
        "name": "shapes",
        "mean": [0.4, 0.5, 0.6],
        "std": [0.2, 0.25, 0.3],
        "classes": ["circle", "square", "star"],
        "augment": "imagenet",
    }
    torch.save({"model": model.state_dict(), "data": record}, tmp_path / "best.pt")
    rng = np.random.default_rng(0)
    images = []
    for i, size in enumerate([(64, 50), (30, 90)]):
        path = tmp_path / f"photo{i}.png"
        image_module.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    exported = _invoke(
        "export", str(spec), "--weights", str(tmp_path / "best.pt"), "-o", str(tmp_path / "m.onnx")
    )
    assert exported.exit_code == 0, exported.output
    ran = subprocess.run(
        [sys.executable, "onnx_predict.py", "best.pt", "m.onnx", *images],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    predicted = _invoke("predict", str(spec), "--weights", str(tmp_path / "best.pt"), *images)
    assert predicted.exit_code == 0, predicted.output
    assert ran.stdout == predicted.output
    assert [line.split(": ")[0] for line in ran.stdout.splitlines()] == images
