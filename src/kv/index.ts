export { KvPool, type KvPoolOptions, type KvPoolStats } from "./pool.js";
export { KvSequence } from "./sequence.js";
export { KV_TYPES, kvBytesPerElement, kvLayout, parseKvType, formatBytes, type KvLayout, type KvType } from "./layout.js";
