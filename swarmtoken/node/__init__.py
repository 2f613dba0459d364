"""A swarm node: its configuration (`config`), its private data (`localdata`), the epoch
runtime that commits, leads, validates and settles (`runtime`), and the protocol attacks
a test node can run (`protocol_attacks`). Imports neither click nor rich."""
