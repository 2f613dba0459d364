"""Everything that talks to the chain: the connection and keystores (`connection`), the
contracts' deployment and its record (`deployment`), the embedded local chain
(`localchain`), and reading the swarm back from its events (`ledger`, `epochview`)."""
