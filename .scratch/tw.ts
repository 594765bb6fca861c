import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
const t0 = performance.now();
await tf.setBackend('wasm');
await tf.ready();
console.log('backend', tf.getBackend(), performance.now()-t0);
const x = tf.randomNormal([2,8,8,3]);
const w = tf.randomNormal([3,3,3,4]);
const y = tf.conv2d(x, w, 1, 1);
console.log(y.shape);
try { const g = tf.grads((w)=>tf.sum(tf.conv2d(x,w,1,1)))([w]); console.log(g[0].shape); } catch(e) { console.log('ERR', e.message); }
console.log(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'));
const b = tf.backend(); console.log(Object.keys(b), b.wasm && b.wasm.HEAPU8.length);
