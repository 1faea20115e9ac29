"""The main window's views (map, registers, incidents, dashboard, administration)."""
