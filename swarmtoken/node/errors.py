"""The node's one user-facing error, in a module of its own so that the command line can
recognise it without loading the node (and torch) for every command."""


class NodeError(RuntimeError):
    """The node cannot take part; the message says what the operator should do."""
