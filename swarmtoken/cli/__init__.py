"""The command line: `swarm` commands (`commands`), their tables (`views`), the local demo
(`demo`) and the install checks (`doctor`). The only part of the package that imports
click and rich."""
