// The 3D viewer: three.js with a studio light setup, a ground grid and orbit controls, rendering
// only when something changed (a continuous loop would keep a laptop's GPU busy for nothing).
import {
  AmbientLight,
  Box3,
  Color,
  DirectionalLight,
  GridHelper,
  HemisphereLight,
  MeshNormalMaterial,
  PerspectiveCamera,
  Scene,
  SRGBColorSpace,
  Vector3,
  WebGLRenderer,
} from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { DRACOLoader } from "three/examples/jsm/loaders/DRACOLoader.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";

export class Viewer {
  constructor(canvas, dracoPath) {
    this.canvas = canvas;
    this.renderer = new WebGLRenderer({ canvas, antialias: true });
    this.renderer.outputColorSpace = SRGBColorSpace;
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    this.scene = new Scene();
    this.scene.background = new Color(0x1d2026);
    this.camera = new PerspectiveCamera(40, 1, 0.01, 1000);
    this.camera.position.set(2.2, 1.6, 2.6);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = false;
    this.controls.listenToKeyEvents(canvas); // arrow keys pan while the canvas has focus
    this.controls.addEventListener("change", () => this.render());
    this.addLights();
    this.grid = new GridHelper(4, 20, 0x5b6270, 0x363b45);
    this.scene.add(this.grid);

    const draco = new DRACOLoader();
    draco.setDecoderPath(dracoPath);
    draco.setDecoderConfig({ type: "wasm" });
    this.loader = new GLTFLoader();
    this.loader.setDRACOLoader(draco);

    this.model = null;
    this.materials = new Map(); // mesh -> its own material, for leaving the normals view
    this.normalMaterial = new MeshNormalMaterial();
    this.shading = "smooth";
    this.wireframe = false;
    this.pending = false;
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  addLights() {
    // Key, fill and rim lights over a sky/ground fill: a product-shot setup, not a flat one.
    this.scene.add(new HemisphereLight(0xdfe8ff, 0x3a3328, 0.9));
    this.scene.add(new AmbientLight(0xffffff, 0.15));
    const key = new DirectionalLight(0xffffff, 2.2);
    key.position.set(3, 4, 2);
    const fill = new DirectionalLight(0xc8d8ff, 0.8);
    fill.position.set(-3, 2, 1);
    const rim = new DirectionalLight(0xffffff, 1.1);
    rim.position.set(0, 3, -4);
    this.scene.add(key, fill, rim);
  }

  /** The GLB in ``data`` (an ArrayBuffer), parsed; `show` puts it on the stage. */
  parse(data) {
    return this.loader.parseAsync(data, "");
  }

  /** Show a parsed GLB in place of the model shown; its triangle count. */
  show(gltf) {
    if (this.model) {
      this.scene.remove(this.model);
      dispose(this.model);
    }
    this.model = gltf.scene;
    this.materials.clear();
    let triangles = 0;
    this.model.traverse((node) => {
      if (!node.isMesh) return;
      this.materials.set(node, node.material);
      const geometry = node.geometry;
      triangles += (geometry.index ? geometry.index.count : geometry.attributes.position.count) / 3;
    });
    this.scene.add(this.model);
    this.applyLook();
    this.fit();
    return triangles;
  }

  clear() {
    if (this.model) {
      this.scene.remove(this.model);
      dispose(this.model);
      this.model = null;
    }
    this.render();
  }

  setShading(shading) {
    this.shading = shading;
    this.applyLook();
  }

  setWireframe(on) {
    this.wireframe = on;
    this.applyLook();
  }

  applyLook() {
    for (const [mesh, own] of this.materials) {
      mesh.material = this.shading === "normals" ? this.normalMaterial : own;
      for (const material of [].concat(mesh.material)) {
        material.wireframe = this.wireframe;
        if ("flatShading" in material && material !== this.normalMaterial) {
          material.flatShading = this.shading === "flat";
        }
        material.needsUpdate = true;
      }
    }
    this.normalMaterial.flatShading = false;
    this.render();
  }

  /** Frame the model: centred on the grid, the camera far enough to see all of it. */
  fit() {
    if (!this.model) return;
    const box = new Box3().setFromObject(this.model);
    const size = box.getSize(new Vector3());
    const centre = box.getCenter(new Vector3());
    this.model.position.sub(new Vector3(centre.x, box.min.y, centre.z));
    const radius = Math.max(size.length() / 2, 1e-3);
    const distance = radius / Math.sin((this.camera.fov * Math.PI) / 360);
    const target = new Vector3(0, size.y / 2, 0);
    this.controls.target.copy(target);
    const direction = new Vector3(1, 0.6, 1.2).normalize();
    this.camera.position.copy(target).addScaledVector(direction, distance * 1.1);
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.grid.scale.setScalar(Math.max(size.x, size.z, 0.5) / 2);
    this.controls.update();
    this.render();
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const width = Math.max(1, Math.floor(box.width));
    const height = Math.max(1, Math.floor(box.height));
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  /** One frame at the next animation frame, however many changes asked for it. */
  render() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.renderer.render(this.scene, this.camera);
      this.canvas.dataset.frames = String(Number(this.canvas.dataset.frames || 0) + 1);
    });
  }
}

function dispose(root) {
  root.traverse((node) => {
    if (!node.isMesh) return;
    node.geometry.dispose();
    for (const material of [].concat(node.material)) {
      for (const value of Object.values(material)) {
        if (value && value.isTexture) value.dispose();
      }
      material.dispose();
    }
  });
}
