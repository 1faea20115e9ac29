"""The Qt-free core of gridman: models, database, migrations and services.

Nothing under ``gridman.core`` may import PySide6, pyqtgraph or ``gridman.gui``; a test proves it.
"""
