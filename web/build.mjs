// Builds Sweedle Studio into deployments/http/studio_files (git-ignored; the ingress serves it
// and the wheel includes it): the bundle and stylesheet under hashed names, three.js's Draco
// decoder in a folder named by its hash, and index.html pointing at them. `%ROOT%` stays in
// index.html: the ingress fills in the path it is served under.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "deployments", "http", "studio_files");
const assets = join(out, "assets");
const DRACO_FILES = ["draco_decoder.js", "draco_decoder.wasm", "draco_wasm_wrapper.js"];
const dracoSource = join(here, "node_modules", "three", "examples", "jsm", "libs", "draco", "gltf");

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  outdir: assets,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});
const built = Object.keys(result.metafile.outputs).map((path) => relative(out, path));
const script = built.find((path) => path.endsWith(".js"));
const style = built.find((path) => path.endsWith(".css"));

const digest = createHash("sha256");
for (const name of DRACO_FILES) digest.update(readFileSync(join(dracoSource, name)));
const draco = `assets/draco-${digest.digest("hex").slice(0, 12)}`;
mkdirSync(join(out, draco));
for (const name of DRACO_FILES) copyFileSync(join(dracoSource, name), join(out, draco, name));

const page = readFileSync(join(here, "src", "index.html"), "utf8")
  .replaceAll("%SCRIPT%", script)
  .replaceAll("%STYLE%", style)
  .replaceAll("%DRACO%", draco);
writeFileSync(join(out, "index.html"), page);
console.log(`Sweedle Studio built into ${relative(process.cwd(), out)}: ${script}, ${style}, ${draco}/`);
