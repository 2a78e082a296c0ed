# `make run`: set up .venv and run the main job. `make test`: set up and run the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: setup run test conformance lint fuzz bench experiments gpu-evidence gpu-wheels golden grammar words templates vscode docs docs-pages docs-serve clean

# Idempotent: the venv is made once, and the project reinstalled only when pyproject changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/resdsl check specs/
	mkdir -p out
	$(VENV)/bin/resdsl compile specs/resnet34.res --backend torch -o out/resnet34.py
	$(PY) -c "import torch, sys; sys.path.insert(0, 'out'); import resnet34; \
	m = resnet34.build_model().eval(); y = m(torch.randn(1, 3, 224, 224)); \
	print('out/resnet34.py: forward pass ->', tuple(y.shape), f'{sum(p.numel() for p in m.parameters()):,} parameters')"

# worksteal: an idle worker takes tests queued for the other, so one long file does not set the
# pace.
test: setup
	$(PY) -m pytest -q -n 2 --dist worksteal

# Every spec at full size, in both backends and across them (tests marked `conformance`).
# The networks over 500 million parameters (`heavy`) one at a time: each comparison holds several
# copies of gigabytes of weights, two at once exhaust 24 GiB.
conformance: setup
	$(PY) -m pytest -q -n 2 --dist worksteal -m "conformance and not heavy"
	$(PY) -m pytest -q -m "conformance and heavy"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fuzz: setup
	RESDSL_FUZZ=1 $(PY) -m pytest -q -n 2 tests/property/test_fuzz.py \
		tests/property/test_hardening.py tests/property/test_weights_files.py

bench: setup
	$(PY) benchmarks/bench_check.py

# The ResNet paper's degradation experiment on CPU, in minutes (docs/pictures.md, "Comparing
# networks"): plain-20/56 against ResNet-20/56 under one recipe, on scikit-learn's digits.
experiments: setup
	$(VENV)/bin/resdsl compare specs/cifar/plain20.res specs/cifar/plain56.res \
		specs/cifar/resnet20.res specs/cifar/resnet56.res \
		--data digits --epochs 15 --lr 0.1 --schedule cosine --out runs/degradation

# Issue 17's figures on one GPU, in under 8 minutes: throughput against torchvision and timm,
# `resdsl train` (torch, keras on torch, torchrun), peak memory; JSON and a table in
# benchmarks/results/gpu. No `setup`: a GPU machine runs it with its own Python, which has
# CUDA's torch (`make gpu-evidence PY=python3`); resdsl need not be installed there.
gpu-evidence:
	$(PY) benchmarks/gpu_evidence.py --out benchmarks/results/gpu

# Wheels a GPU machine without a package index lacks (its Python 3.12 has torch, torchvision,
# timm, numpy, pillow, scikit-learn, jinja2, click, rich, tensorboard): the compiler's lark and
# pydantic, and Keras for the Keras-on-torch run. Into .whl/ (git-ignored), to carry there and
# install with `pip install --no-index --target DIR .whl/*.whl`.
GPU_WHEELS = lark==1.3.1 pydantic pydantic-core annotated-types typing-inspection \
	keras==3.15.1 namex optree
gpu-wheels: setup
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		--platform manylinux_2_28_x86_64 -d .whl $(GPU_WHEELS)

golden: setup
	RESDSL_UPDATE_GOLDEN=1 $(PY) -m pytest -q -n 2 tests/unit/codegen/test_codegen.py::test_golden \
		tests/unit/diagnostics/test_diagnostics.py -k "golden or code"
	RESDSL_UPDATE_GOLDEN=1 $(PY) -m pytest -q -n 1 tests/system/test_docs.py \
		-k "generated_pages or command_examples"
	$(VENV)/bin/resdsl summary specs/resnet50.res > docs/resnet50-summary.txt

# The documentation site (mkdocs.yml, docs/): built into build/site, strictly (a broken link,
# page or anchor fails), or served at http://127.0.0.1:8000 while you edit. docs-pages rewrites
# the generated pages (a page per diagnostic code, the marked tables) after a change to the
# code registry, the schema or the spec library.
export NO_MKDOCS_2_WARNING = 1
docs: setup
	$(PY) -m mkdocs build --strict

docs-pages: setup
	$(PY) -m resdsl.tooling.docs

docs-serve: setup
	$(PY) -m mkdocs serve

# Prebuilt LALR tables (see resdsl.language.parser.lark_parser); rerun after editing grammars/resdsl.lark.
grammar: setup
	$(PY) -c "from resdsl.language.parser import build_tables; \
	open('grammars/resdsl.tables', 'w').write(build_tables())"

# The lexer's and the VS Code grammar's word lists, from the schema and the block registry.
words: setup
	$(PY) -m resdsl.tooling.vocabulary

# Precompiled templates (see resdsl.codegen.backends.template_environment); rerun after editing a template.
templates: setup
	$(PY) -c "from resdsl.codegen.backends import compile_templates; \
	[compile_templates(f'backends/{b}/templates') for b in ('torch', 'keras')]"

# The VS Code extension (editors/vscode): its npm packages, the grammar test (every spec of the
# library against the Pygments lexer's tokens, and the hand-written cases), and the .vsix.
VSCODE := editors/vscode
vscode: setup
	cd $(VSCODE) && npm ci --no-audit --no-fund
	rm -rf build/grammar-tests
	$(PY) $(VSCODE)/test/library.py specs build/grammar-tests
	cd $(VSCODE) && npx vscode-tmgrammar-test '../../build/grammar-tests/**/*.res' 'test/*.res'
	cd $(VSCODE) && npx @vscode/vsce package --skip-license --allow-missing-repository

clean:
	rm -rf $(VENV) out build dist *.egg-info
