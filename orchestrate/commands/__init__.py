"""The ``councilmatch`` sub-commands, one module per command group; ``orchestrate.cli`` registers them."""
