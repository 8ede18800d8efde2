// Copies the one onnxruntime-web build the component uses into static/: the single-file ES module bundle (its
// Emscripten glue inlined) and its WebAssembly binary (SIMD; it runs single-threaded when the page is not
// cross-origin isolated, as a Streamlit page is not). The binary is stored gzipped (14 MB -> about 3.7 MB):
// Streamlit serves a .gz file as it is (application/gzip), where it would gzip a .wasm again on every request
// (0.6 s of server time), and live.js inflates it with the browser's DecompressionStream.
// `npm ci && npm run build` reproduces the committed files byte for byte (gzip's header carries no time).
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const dist = "node_modules/onnxruntime-web/dist/";
mkdirSync("static", { recursive: true });
copyFileSync(dist + "ort.wasm.bundle.min.mjs", "static/ort.wasm.bundle.min.mjs");
writeFileSync("static/ort-wasm-simd-threaded.wasm.gz",
  gzipSync(readFileSync(dist + "ort-wasm-simd-threaded.wasm"), { level: 9 }));
rmSync("static/ort-wasm-simd-threaded.wasm", { force: true });
for (const name of ["ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm.gz"]) {
  console.log(`static/${name}: ${statSync("static/" + name).size} bytes`);
}
