"""The dialogue: one canonical transcript rendered per role, and the check that it is still a therapy simulation."""
