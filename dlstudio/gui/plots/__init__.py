"""Live plots fed during training (design.md §6): ``curves.CurvesView``, ``filters.FiltersView``,
``confusion.ConfusionView``.

Each view creates its pyqtgraph items once and updates them with
``setData`` / ``setImage``; none of them imports torch.
"""
