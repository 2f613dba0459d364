"""`swarm dashboard`: a read-only local web page for a running or finished swarm, built
from the swarm contract's events and view calls only (see `server` for the routes)."""
