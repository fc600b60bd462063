"""Running and scoring participants' code. Never imports ``server``."""
