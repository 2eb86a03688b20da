"""mkdocs hooks (mkdocs.yml `hooks:`): pages generated from the code at every build, never
committed, so they cannot drift from cynet:

- keras-compat.md, the Keras compatibility reference (docs/gen_compat.py);
- api/*.md, the API reference: one mkdocstrings block (`::: module`) per public module of the
  packages in API_PAGES (a package's public modules are listed from its directory, so a new module
  appears without editing the docs).
"""
import importlib.util
import os

from mkdocs.structure.files import File

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# page -> (title, introduction, modules; "pkg.*" stands for every public module of the package)
API_PAGES = {
    "models": ("Models", "Sequential, Functional and subclassed models, ready-made templates, and the "
               "training loop they share (`fit`, `evaluate`, `predict`).",
               ["cynet.models.*", "cynet.trainers.trainer"]),
    "layers": ("Layers", "Every layer, with Keras's names, arguments and defaults; the `Layer` base "
               "class (`cynet.layers.base`) is the contract custom layers implement.", ["cynet.layers.*"]),
    "ops": ("Ops", "Keras ops (`cynet.ops`), differentiable on the tape, and `GradientTape`.",
            ["cynet.ops.*"]),
    "losses-metrics": ("Losses and metrics", "", ["cynet.losses", "cynet.metrics"]),
    "optimizers": ("Optimizers", "Optimizers and learning-rate schedules.", ["cynet.optimizers.*"]),
    "callbacks": ("Callbacks", "", ["cynet.callbacks"]),
    "initializers-regularizers": ("Initializers, regularizers, activations", "",
                                  ["cynet.initializers", "cynet.regularizers", "cynet.activations"]),
    "saving": ("Saving", "`.cynet`, Keras 3's `.keras` and `.weights.h5`, and legacy TF-Keras `.h5` files.",
               ["cynet.saving", "cynet.saving_keras", "cynet.saving_legacy_h5"]),
    "utils": ("Utilities and data sets", "", ["cynet.utils.*", "cynet.datasets.*", "cynet.config",
                                                "cynet.random", "cynet.backend"]),
    "kernels": ("Kernels", "The Python-facing kernel API: each function validates its arguments, then runs "
                "the compiled kernel or its NumPy twin (see the [kernels guide](../guide/kernels.md)).",
                ["cynet.kernels.*"]),
    "distributed": ("Distributed", "Data-parallel training on MPI (see the "
                    "[guide](../guide/distributed.md)).", ["cynet.distributed.*"]),
    "testing": ("Testing helpers", "Twin comparisons and gradient checks for kernels and layers.",
                ["cynet.testing"]),
}


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expand(module):
    """"pkg.*" -> the package and its public Python modules (sorted); anything else unchanged."""
    if not module.endswith(".*"):
        return [module]
    package = module[:-2]
    directory = os.path.join(ROOT, *package.split("."))
    names = sorted(f[:-3] for f in os.listdir(directory)
                   if f.endswith(".py") and not f.startswith("_"))
    names += sorted(d for d in os.listdir(directory)
                    if not d.startswith("_") and os.path.isfile(os.path.join(directory, d, "__init__.py")))
    return [package] + [f"{package}.{name}" for name in names]


def api_page(title, intro, modules):
    blocks = [f"::: {m}\n" for spec in modules for m in expand(spec)]
    return f"# {title}\n\n" + (f"{intro}\n\n" if intro else "") + "\n".join(blocks)


def on_files(files, config):
    files.append(File.generated(config, "keras-compat.md", content=_load("gen_compat").page()))
    for slug, (title, intro, modules) in API_PAGES.items():
        files.append(File.generated(config, f"api/{slug}.md", content=api_page(title, intro, modules)))
    return files
