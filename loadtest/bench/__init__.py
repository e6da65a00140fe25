"""chatload's own speed, measured: ``chatload bench`` / ``make bench``."""
