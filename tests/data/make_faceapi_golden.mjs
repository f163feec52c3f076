// Reference expression probabilities from the original face-api.js runtime (tfjs 4.22 in node, CPU backend).
//
// Run through tests/data/make_faceapi_golden.py, which writes the faces and packs faceapi_golden.npz. By hand:
//   cd SCRATCH && npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
//   node /path/to/make_faceapi_golden.mjs faces.u8 N MODEL_DIR > probs.json
// faces.u8: N raw RGB uint8 faces of 112x112x3 (HWC); MODEL_DIR holds face_expression_model-weights_manifest.json
// and face_expression_model.bin. Prints {"labels": [...], "logits": [[7 floats] x N], "probs": [...], ...}, in the
// net's output order.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Resolve packages from the working directory (the scratch folder), not from this file's folder.
const require = createRequire(join(process.cwd(), 'noop.js'));
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const { tf } = faceapi;

const [facesPath, n, modelDir] = process.argv.slice(2);
const size = 112;
await tf.setBackend('cpu');
await tf.ready();
await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);

const bytes = readFileSync(facesPath);
const faces = [];
for (let i = 0; i < Number(n); i += 1) {
  const face = bytes.subarray(i * size * size * 3, (i + 1) * size * size * 3);
  // An int32 (112, 112, 3) tensor: face-api's tensor input path (padToSquare and resize are no-ops at 112x112).
  faces.push(tf.tensor3d(Int32Array.from(face), [size, size, 3], 'int32'));
}
const net = faceapi.nets.faceExpressionNet;
const logits = [];
const probs = [];
for (const face of faces) {
  // runNet is forward without the softmax: the logits keep what saturated probabilities round away.
  const fc = net.runNet(await faceapi.toNetInput(face));
  const out = await net.forward(face);
  logits.push(Array.from(fc.dataSync()));
  probs.push(Array.from(out.dataSync()));
  tf.dispose([fc, out]);
}
const labels = faceapi.FACE_EXPRESSION_LABELS;
console.log(JSON.stringify({ labels, logits, probs, backend: tf.getBackend(), tfjs: tf.version.tfjs }));
