"""The mail domain. It imports neither flask nor rq."""
