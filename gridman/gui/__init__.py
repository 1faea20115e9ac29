"""The PySide6 desktop front. Only this package imports Qt; it calls gridman.core services."""
