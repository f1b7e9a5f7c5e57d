"""Loading a spec: YAML with positions, the JSON Schema, interpolation, and the model rules."""
