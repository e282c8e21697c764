"""Every torchvision classifier imports (opaque nodes allowed) and computes what torchvision computes (issue 12).

The whole list (80 architectures, up to vit_h_14 and regnet_y_128gf with over 600 million parameters each)
takes many minutes and tens of GB of memory, so the default run imports a sample that covers each family
and each way of importing: mapped completely, submodules kept whole, the module around a module that takes
several inputs kept whole, and the whole model as one node. Set ``DLSTUDIO_IMPORT_EVERY_CLASSIFIER=1`` to
import them all.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from dlstudio.core.compiler import compile_graph  # noqa: E402
from dlstudio.core.importer import classification_models, import_torchvision  # noqa: E402
from dlstudio.core.shapes import infer_graph  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EVERY = os.environ.get("DLSTUDIO_IMPORT_EVERY_CLASSIFIER") == "1"

SAMPLE = ["alexnet", "squeezenet1_0", "mnasnet0_5", "shufflenet_v2_x1_0", "regnet_x_400mf",
          "efficientnet_v2_s", "mobilenet_v3_large", "resnext50_32x4d", "swin_v2_t", "vit_b_32"]


def test_the_sample_names_classifiers_of_torchvision() -> None:
    assert set(SAMPLE) <= set(classification_models())


@pytest.mark.timeout(600 if EVERY else 120)
@pytest.mark.parametrize("name", classification_models() if EVERY else SAMPLE)
def test_a_torchvision_classifier_imports_and_computes_what_torchvision_computes(name: str) -> None:
    torch.manual_seed(0)
    result = import_torchvision(name, num_classes=10, opaque=True)
    assert result.unmapped == [] and result.project is not None
    graph = result.project.graph
    assert sum(info.params for info in infer_graph(graph).values()) == result.param_count
    model = compile_graph(graph).eval()
    result.load_into(model)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = result.source(x), model(x)
    assert got.shape == expected.shape == (1, 10)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4), (got - expected).abs().max().item()
    # Every opaque node says why, in one sentence.
    for node in graph:
        if node.type == "TorchvisionModule":
            reason = node.params["reason"]
            assert reason.endswith(".") and "\n" not in reason and len(reason) > 20, node.name
