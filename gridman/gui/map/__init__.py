"""The map (地图): grid boundaries coloured by a figure, buildings and open incidents (view.py)."""
