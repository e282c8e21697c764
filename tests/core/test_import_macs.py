"""The MACs the canvas shows for an imported network agree with torch's own flop counter (2 FLOPs per MAC)."""

from __future__ import annotations

import pytest

from dlstudio.core.importer import INPUT_SHAPE, import_torchvision
from dlstudio.core.shapes import infer_graph


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"])
def test_imported_macs_equal_the_flop_counters(name: str) -> None:
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    result = import_torchvision(name)
    macs = sum(info.macs for info in infer_graph(result.project.graph).values())
    model = torchvision.models.get_model(name, weights=None).eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, *INPUT_SHAPE))
    # ConvNeXt's layer scale is a multiply that we map to a depthwise 1x1 convolution (its MACs are counted,
    # torch's counter leaves element-wise products out): 0.05% more for convnext_tiny, exact for the others.
    assert macs == pytest.approx(counter.get_total_flops() / 2, rel=1e-3)


@pytest.mark.timeout(120)
def test_an_opaque_module_records_the_flop_counters_macs(tmp_path) -> None:
    """vit_b_16 is one opaque node (operations in its own forward); an ONNX shufflenet keeps its channel
    shuffles as opaque nodes. Their MACs are counted at import, so the totals still agree with torch's."""
    import warnings

    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from dlstudio.core.importer import import_onnx

    def counted(model, shape) -> float:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model.eval()(torch.zeros(1, *shape))
        return counter.get_total_flops() / 2

    vit = import_torchvision("vit_b_16", num_classes=10, opaque=True)
    (node,) = [node for node in vit.project.graph if node.type == "TorchvisionModule"]
    assert node.params["macs"] > 0
    total = sum(info.macs for info in infer_graph(vit.project.graph).values())
    assert total == counted(torchvision.models.vit_b_16(num_classes=10), INPUT_SHAPE)

    source = torchvision.models.shufflenet_v2_x0_5(num_classes=10).eval()
    path = tmp_path / "shufflenet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is deprecated
        torch.onnx.export(source, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    shuffled = import_onnx(path)
    opaque = [node for node in shuffled.project.graph if node.type == "OnnxModule"]
    assert opaque and all(node.params["macs"] > 0 for node in opaque if node.params["param_count"])
    total = sum(info.macs for info in infer_graph(shuffled.project.graph).values())
    assert total == counted(source, (3, 64, 64))
