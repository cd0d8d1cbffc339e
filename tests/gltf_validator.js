// Validate one glTF/GLB file with the Khronos glTF validator and print its JSON report.
// Usage: NODE_PATH=.tools/node_modules node tests/gltf_validator.js <file>
"use strict";
const fs = require("fs");
const validator = require("gltf-validator");

const path = process.argv[2];
if (!path) {
  console.error("usage: node gltf_validator.js <file.glb>");
  process.exit(2);
}
const bytes = new Uint8Array(fs.readFileSync(path));
validator
  .validateBytes(bytes, { uri: path, maxIssues: 200 })
  .then((report) => process.stdout.write(JSON.stringify(report)))
  .catch((error) => {
    console.error(`validation failed: ${error}`);
    process.exit(1);
  });
