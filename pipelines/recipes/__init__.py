"""Recipes: one experiment of the paper per plain config file (``<name>.yaml`` in this folder).

``pipelines list`` shows them; ``pipelines run NAME`` runs one (``loader`` reads the files, ``plan`` checks
the inputs and prints what will be computed, ``runner`` runs the steps with resume, ``table`` writes the
paper's table form). The ``demo`` recipe is the synthetic demo (pipelines/demo.py), run as before.
"""
