/**
 * The tests' local Hub / ModelScope stand-in as a process, for trying `xverse pull` by hand without the network:
 *   node dist/scripts/hub-fixture-server.js [--port N] [--cut PATH:BYTES] [--stall PATH:BYTES] [--big MB]
 * serves the embedded stories260K model as tiny-org/stories260K (plus big.bin, MB of random bytes, with --big),
 * logs every request with its Range header to stderr. Then:
 *   HF_ENDPOINT=http://127.0.0.1:N HF_HUB_CACHE=/tmp/cache xverse pull tiny-org/stories260K
 *   MODELSCOPE_DOMAIN=http://127.0.0.1:N xverse pull tiny-org/stories260K --source modelscope
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { FixtureHub, storiesFiles } from "../test/hub/fixture-server.js";

const { values: v } = parseArgs({ options: { port: { type: "string" }, cut: { type: "string", multiple: true }, stall: { type: "string", multiple: true }, big: { type: "string" } } });
const files = storiesFiles();
if (v.big) files.push({ path: "big.bin", data: randomBytes(Number(v.big) * 1e6), lfs: true });
const hub = new FixtureHub("tiny-org/stories260K", "6c3ae0f1b2d94e8a7f5c1d0e9b8a7f6e5d4c3b2a", files);
const pairs = (l: string[] | undefined) => new Map((l ?? []).map((s) => { const i = s.lastIndexOf(":"); return [s.slice(0, i), Number(s.slice(i + 1))] as [string, number]; }));
hub.faults = { cutAfter: pairs(v.cut), stallAfter: pairs(v.stall) };
// log as requests arrive
const push = hub.log.push.bind(hub.log);
hub.log.push = (...e) => { for (const x of e) process.stderr.write(`[hub] ${x.method} ${x.url}${x.range ? `  Range: ${x.range}` : ""}\n`); return push(...e); };
await hub.start(Number(v.port ?? 0));
process.stdout.write(`${hub.url}\n`);
