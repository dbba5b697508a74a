"""The spec layer's machinery: options as dataclass fields with their metadata
(`spec.options`) and the config schema composed from the schema file and those fields
(`spec.schema`). Standard library, yaml and jsonschema only: imported by everything, importing
nothing of dcobench above it. The spec layer also holds config, experiments, the variants, the
guides, merge ids and the registries' names (see tests/unit/test_spec_layer_imports.py)."""
