"""Shape inference: per-node results, error isolation, totals, incremental updates."""

from __future__ import annotations

from dlstudio.core.graph import Graph
from dlstudio.core.shapes import ShapeInference


def lenet_like(graph: Graph) -> dict[str, str]:
    ids = {}
    for key, type_id, params in [
        ("x", "Input", {"shape": [1, 28, 28]}),
        ("conv", "Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2}),
        ("relu", "ReLU", {}),
        ("pool", "MaxPool2d", {"kernel_size": 2}),
        ("flat", "Flatten", {}),
        ("fc", "Linear", {"out_features": 10}),
        ("out", "Output", {"classes": 10}),
    ]:
        ids[key] = graph.add_node(type_id, params).id
    keys = list(ids)
    for a, b in zip(keys, keys[1:]):
        graph.connect(ids[a], "out", ids[b], "in")
    return ids


def test_shapes_params_and_totals():
    graph = Graph()
    ids = lenet_like(graph)
    shapes = ShapeInference(graph)
    assert shapes.info(ids["conv"]).output_shape == (6, 28, 28)
    assert shapes.info(ids["pool"]).output_shape == (6, 14, 14)
    assert shapes.info(ids["fc"]).params == 6 * 14 * 14 * 10 + 10
    assert shapes.info(ids["out"]).output_shape == (10,)
    totals = shapes.totals()
    assert totals.params == (6 * 25 + 6) + (1176 * 10 + 10)
    assert totals.macs == 6 * 28 * 28 * 25 + 1176 * 10
    assert totals.errors == ()


def test_an_error_names_the_node_offers_a_fix_and_does_not_hide_unaffected_shapes():
    graph = Graph()
    ids = lenet_like(graph)
    shapes = ShapeInference(graph)
    graph.remove_node(ids["flat"])
    graph.connect(ids["pool"], "out", ids["fc"], "in")
    error = shapes.info(ids["fc"]).error
    assert error.node_id == ids["fc"]
    assert error.message == ("Linear expects (N, features); received (N, 6, 14, 14): "
                             "insert a Flatten before it")
    assert error.fix.action == "insert_before" and error.fix.layer_type == "Flatten"
    assert shapes.info(ids["out"]).blocked and shapes.info(ids["out"]).error is None
    assert shapes.info(ids["pool"]).output_shape == (6, 14, 14)  # upstream keeps its shape
    # A side branch off the pool is unaffected by the broken Linear.
    side = graph.add_node("ReLU").id
    graph.connect(ids["pool"], "out", side, "in")
    assert shapes.info(side).output_shape == (6, 14, 14)
    assert [e.node_id for e in shapes.totals().errors] == [ids["fc"]]


def test_set_in_features_fix_is_offered_when_a_fixed_value_disagrees():
    graph = Graph()
    ids = lenet_like(graph)
    graph.set_param(ids["fc"], "in_features", 100)
    error = ShapeInference(graph).info(ids["fc"]).error
    assert error.fix.action == "set_param"
    assert (error.fix.param, error.fix.value) == ("in_features", 1176)


def test_only_the_edited_node_and_its_descendants_are_recomputed():
    graph = Graph()
    ids = lenet_like(graph)
    shapes = ShapeInference(graph)
    shapes.update()
    graph.set_param(ids["pool"], "kernel_size", 4)
    recomputed = shapes.update()
    assert recomputed == [ids["pool"], ids["flat"], ids["fc"], ids["out"]]
    assert shapes.info(ids["flat"]).output_shape == (6 * 7 * 7,)
    assert shapes.update() == []  # nothing dirty, nothing recomputed


def test_incremental_results_equal_a_fresh_full_inference():
    graph = Graph()
    ids = lenet_like(graph)
    live = ShapeInference(graph)
    graph.set_param(ids["conv"], "kernel_size", 3)
    graph.set_param(ids["x"], "shape", [3, 32, 32])
    graph.remove_node(ids["relu"])
    graph.connect(ids["conv"], "out", ids["pool"], "in")
    fresh = ShapeInference(graph)
    assert live.infos == fresh.infos


def test_merge_shapes_are_checked():
    graph = Graph()
    x = graph.add_node("Input", {"shape": [8, 16, 16]}).id
    a = graph.add_node("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}).id
    b = graph.add_node("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}).id
    add = graph.add_node("Add").id
    graph.connect(x, "out", a, "in")
    graph.connect(x, "out", b, "in")
    graph.connect(a, "out", add, "in1")
    graph.connect(b, "out", add, "in2")
    shapes = ShapeInference(graph)
    error = shapes.info(add).error
    assert error.message == "Add needs inputs of the same shape; received (N, 8, 16, 16) and (N, 16, 16, 16)"
    graph.set_param(b, "out_channels", 8)
    assert shapes.info(add).output_shape == (8, 16, 16)


def test_removed_nodes_leave_no_info_behind():
    graph = Graph()
    ids = lenet_like(graph)
    shapes = ShapeInference(graph)
    graph.remove_node(ids["conv"])
    assert ids["conv"] not in shapes.infos
    assert shapes.info(ids["relu"]).error is not None  # its input is now unconnected
    shapes.close()
    graph.add_node("ReLU")  # no longer followed: must not raise


def test_a_class_count_mismatch_is_fixed_on_the_last_linear_not_by_another_linear():
    graph = Graph()
    ids = lenet_like(graph)
    graph.rename(ids["fc"], "classifier")
    graph.set_param(ids["out"], "classes", 7)
    shapes = ShapeInference(graph)
    fix = shapes.info(ids["out"]).error.fix
    assert (fix.action, fix.node_id, fix.param, fix.value) == ("set_param", ids["fc"], "out_features", 7)
    assert fix.description == "Set out_features of classifier to 7"
    graph.rename(ids["fc"], "head")  # the description follows the name
    assert shapes.info(ids["out"]).error.fix.description == "Set out_features of head to 7"


def test_the_class_count_fix_looks_through_activations_and_inserts_a_linear_when_there_is_none():
    from core_helpers import chain_graph

    graph = chain_graph([("Input", {"shape": [1, 4, 4]}), ("Flatten", {}), ("Linear", {"out_features": 5}),
                         ("ReLU", {}), ("Dropout", {}), ("Output", {"classes": 3})])
    fix = ShapeInference(graph).info("output1").error.fix
    assert (fix.action, fix.node_id, fix.value) == ("set_param", "linear1", 3)

    graph = chain_graph([("Input", {"shape": [6]}), ("Output", {"classes": 3})])
    fix = ShapeInference(graph).info("output1").error.fix
    assert fix.action == "insert_before" and fix.layer_type == "Linear" and fix.params == {"out_features": 3}
