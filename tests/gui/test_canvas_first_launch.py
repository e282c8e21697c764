"""First launch and opened templates: the whole network in view, names readable, no edge back across it."""

from __future__ import annotations

import pytest

from dlstudio.core.project import list_templates, load_template
from dlstudio.gui.canvas.items import NodeItem

NAMES = [template.name for template in list_templates()]


def _open_at(make_window, qtbot, project, size=(1600, 1000)):
    window = make_window(project, show=False)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.mark.parametrize("name", NAMES)
def test_a_template_opens_whole_and_readable_at_1600_by_1000(make_window, qtbot, name):
    window = _open_at(make_window, qtbot, load_template(name))
    view = window.view
    zoom = view.zoom_level()
    assert 0 < zoom <= 1.0, "never magnified past 100%"
    assert NodeItem.title_pixel_size(zoom) * zoom >= 11, f"titles render at {NodeItem.title_pixel_size(zoom) * zoom:.1f} px"
    area = view.viewport().rect()
    # What is drawn: nodes outside collapsed blocks, and the collapsed blocks themselves (one item each).
    drawn = {**{node_id: item for node_id, item in window.scene.node_items.items() if item.isVisible()},
             **window.scene.block_items}
    assert len(drawn) >= min(len(window.project.graph), 5)
    for node_id, item in drawn.items():
        if not item.isVisible():
            continue  # an expanded block's card is hidden; its nodes are checked above
        on_screen = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        assert area.contains(on_screen), f"{node_id} lies outside the viewport"
    # No edge runs back across the drawing: an edge between rows is a turn at the side.
    bounds = window.scene.itemsBoundingRect()
    for edge, edge_item in window.scene.edge_items.items():
        if not edge_item.isVisible():
            continue  # inside a collapsed block
        path = edge_item.path().boundingRect()
        if path.height() > 60:
            assert path.width() < bounds.width() / 2, f"{edge} runs across the canvas"


def test_nodes_of_a_backwards_row_face_their_flow(make_window, qtbot):
    window = _open_at(make_window, qtbot, load_template("lenet5"))
    scene = window.scene
    flipped = scene.flipped_node_ids()
    assert flipped, "lenet5 wraps into a snake at this size"
    for edge, edge_item in scene.edge_items.items():
        start, end = edge_item.source.scenePos(), edge_item.target.scenePos()
        if abs(start.y() - end.y()) < 1:  # along a row: the edge leaves forwards and arrives without looping
            assert edge_item.path().boundingRect().width() <= abs(end.x() - start.x()) + 10, str(edge)
    node_id = flipped[0]
    item = scene.node_items[node_id]
    assert all(port.pos().x() > 0 for port in item.inputs.values())
    # Dragged back into a left-to-right flow, the node turns round again.
    preds = window.project.graph.predecessors(node_id)
    succs = window.project.graph.successors(node_id)
    left = min(scene.node_items[n].pos().x() for n in preds + succs)
    right = max(scene.node_items[n].pos().x() for n in preds + succs)
    if preds and succs:
        window.project.layout.move(preds[0], left - 900, 2000)
        window.project.layout.move(succs[0], right + 900, 2000)
        window.project.layout.move(node_id, (left + right) / 2, 2000)
        assert not item.flipped


def test_the_view_fits_again_on_resize_until_the_person_zooms(make_window, qtbot):
    window = _open_at(make_window, qtbot, load_template("vgg-mini"), size=(1100, 760))
    view = window.view
    small = view.zoom_level()
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: view.zoom_level() > small, timeout=3000)
    area = view.viewport().rect()
    assert all(area.contains(view.mapFromScene(item.sceneBoundingRect()).boundingRect())
               for item in window.scene.node_items.values())
    view.zoom_by(1.25)
    zoomed = view.zoom_level()
    window.resize(1300, 900)
    qtbot.wait(50)
    assert view.zoom_level() == zoomed, "after a zoom the person steers the view"


def test_a_title_stays_readable_when_zoomed_out():
    for zoom in (1.0, 0.8, 0.6, 0.45, 0.35):
        assert NodeItem.title_pixel_size(zoom) * zoom >= 11
    assert NodeItem.title_pixel_size(1.0) == 13 and NodeItem.title_pixel_size(2.0) == 13
