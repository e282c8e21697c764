"""The Qt-free core of dlstudio: graph model, layers, shapes, compiler, files.

Nothing under this package may import PySide6, pyqtgraph or dlstudio.gui
(an import-linter contract checks it). Modules that need torch say so at
the top; the graph and shape inference do not import it.
"""
