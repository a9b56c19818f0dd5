"""Physical constants of the inventory (cited in REFERENCES.md)."""

# Light in single-mode fiber: about 4.9 microseconds per km, one way.
FIBER_US_PER_KM = 4.9
