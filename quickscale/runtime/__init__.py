"""How a generated project runs: one interface, a local and a Docker implementation."""
