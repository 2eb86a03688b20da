"""The Keras compatibility reference (docs/gen_compat.py, rendered by the mkdocs hook at every
build): every name it calls supported or partly exists in cynet, statuses follow the code, the
hand-written notes are about real Keras names, and the committed Keras snapshot is current."""
import importlib
import importlib.util
import json
import os
import pathlib

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.skipif(not (DOCS / "gen_compat.py").exists(), reason="docs/ not found next to the tests")


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_compat", DOCS / "gen_compat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def snapshot(gen):
    return gen.load_snapshot()


def test_snapshot_covers_the_namespaces(snapshot):
    assert snapshot["keras_version"].startswith("3.")
    for namespace in ("layers", "ops", "losses", "metrics", "optimizers", "callbacks", "utils"):
        assert len(snapshot["namespaces"][namespace]) > 5, namespace
    assert "Dense" in snapshot["namespaces"]["layers"] and "conv" in snapshot["namespaces"]["ops"]


def test_supported_names_exist_in_cynet(gen, snapshot):
    entries = list(gen.entries(snapshot))
    assert len(entries) == sum(len(v) for v in snapshot["namespaces"].values())
    have = [e for e in entries if e[2] in ("supported", "partly")]
    assert len(have) > 200
    for namespace, name, status, note in entries:
        module = importlib.import_module(f"cynet.{namespace}") if status != "not yet" else None
        if status in ("supported", "partly"):
            assert hasattr(module, name), f"cynet.{namespace}.{name} is listed as {status}"
        if status == "partly":
            assert note, f"{namespace}.{name} is partly supported without saying how"


def test_not_yet_names_are_absent(gen, snapshot):
    for namespace, name, status, _ in gen.entries(snapshot):
        if status == "not yet":
            try:
                module = importlib.import_module(f"cynet.{namespace}")
            except ModuleNotFoundError:
                continue
            obj = getattr(module, name, None)
            assert obj is None or isinstance(obj, type(os)), \
                f"cynet.{namespace}.{name} exists but is listed as not yet"


def test_status_follows_the_code(gen, snapshot, monkeypatch):
    """Remove a layer from cynet: the page says "not yet" for it (nothing is typed by hand)."""
    import cynet.layers
    assert dict((n, s) for ns, n, s, _ in gen.entries(snapshot) if ns == "layers")["Flatten"] != "not yet"
    monkeypatch.delattr(cynet.layers, "Flatten")
    assert dict((n, s) for ns, n, s, _ in gen.entries(snapshot) if ns == "layers")["Flatten"] == "not yet"


def test_missing_options_are_found_from_signatures(gen):
    class Base:                       # takes no **kwargs: the walk up the hierarchy stops here
        def __init__(self, name=None):
            pass

    class Layer(Base):
        def __init__(self, units, activation=None, **kwargs):
            super().__init__(**kwargs)

    def op(x, axis=None):
        return x

    assert gen.missing_arguments(["activation", "name", "lora_rank"], Layer) == ["lora_rank"]
    assert gen.missing_arguments(["axis", "dtype"], op) == ["dtype"]
    assert gen.missing_arguments(["anything"], lambda x, **kw: x) == []   # takes any keyword


def test_notes_are_about_keras_names(gen, snapshot):
    known = {f"{ns}.{n}" for ns, names in snapshot["namespaces"].items() for n in names}
    for key in list(gen.NOTES) + list(gen.NOT_YET):
        assert key in known, f"note for {key}, which is not a Keras name in the snapshot"


def test_page_lists_every_name(gen, snapshot):
    page = gen.page(snapshot)
    assert page.startswith("# Keras compatibility reference")
    for namespace, names in snapshot["namespaces"].items():
        assert f"(`keras.{namespace}`)" in page
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) == sum(len(v) for v in snapshot["namespaces"].values())


def test_snapshot_is_current(gen, snapshot):
    """When the installed Keras is the snapshot's version, the snapshot is what it would write."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.__version__ != snapshot["keras_version"]:
        pytest.skip(f"installed Keras {keras.__version__}, snapshot of {snapshot['keras_version']}")
    spec = importlib.util.spec_from_file_location("keras_snapshot", DOCS / "keras_snapshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = json.loads(json.dumps(module.snapshot()))
    assert fresh["namespaces"] == snapshot["namespaces"]
    assert fresh["parameters"] == snapshot["parameters"]


def test_nav_pages_exist():
    """Every page in mkdocs.yml's nav is a file in docs/ or one the hook generates."""
    yml = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    nav = yml.split("\nnav:\n", 1)[1]
    pages = [line.split(":", 1)[1].strip() for line in nav.splitlines() if line.strip().endswith(".md")]
    assert "keras-compat.md" in pages and "getting-started.md" in pages
    hooks = (DOCS / "hooks.py").read_text(encoding="utf-8")
    for page in pages:
        generated = page == "keras-compat.md" or (page.startswith("api/") and f'"{page[4:-3]}": (' in hooks)
        assert generated or (DOCS / page).exists(), page
