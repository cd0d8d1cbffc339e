"""Mesh export, one module per step: the raw hand-off (mesh_io), optimisation
(mesh_optimizer), validation (validator), LODs (lod_generator), GLB/glTF (glb), Draco
(draco_compressor), other formats (formats), thumbnails (thumbnail_generator, with the numpy
fallback in thumbnail), engine bundles (engine_exporter, safe_files), the default chain
(pipeline) and the exports the API asks for (asset_exports)."""
