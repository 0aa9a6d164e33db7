/** `xverse pull REPO[@REVISION]`: a model repository from the Hugging Face Hub or ModelScope into the shared cache. */
import { numberFlag, parseFlags, type Command } from "../command.js";
import { XverseError } from "../../errors.js";
import { fmtBytes, listRepo } from "../../hub/pull.js";
import { RepoCache } from "../../hub/cache.js";
import { isCached, partialBytes } from "../../hub/download.js";
import { hubEnv, interruptSignal, parseSource, pullWithUi, sourceFor } from "../hub-env.js";

const help = `Usage: xverse pull REPO[@REVISION] [--include GLOB…] [--exclude GLOB…] [options]

Downloads a model repository into the Hugging Face cache, in huggingface_hub's own layout
(models--org--name/blobs, snapshots/<commit>, refs/<revision>), so Python tools and xverse share
downloads both ways. Then every command loads it by name: xverse generate --model REPO.

Downloads resume where they stopped (after a dropped connection, or Ctrl-C and running the same
command again), are retried with backoff, run a few files at a time, and are checked against the
SHA-256 the server lists (git blob SHA-1 and size for small files) before they get their final name.
A second pull of the same revision transfers nothing.

Options:
  --include GLOB     only files matching GLOB (repeatable; * also matches "/"), e.g. "*q4_k_m*".
                     Parts of a split GGUF and shards of a checkpoint come with any one of them.
  --exclude GLOB     leave out files matching GLOB (repeatable)
  --list             show the files (sizes, and which are cached) without downloading
  --source hf|modelscope
                     where from (default hf: the Hugging Face Hub)
  --jobs N           files downloaded at once (default 4)
  --quiet            no progress line
  -h, --help         this text

Environment:
  HF_ENDPOINT        Hub address (default https://huggingface.co), e.g. a mirror
  HF_TOKEN           access token for gated or private repositories; without it the token file
                     that \`huggingface-cli login\` writes (HF_TOKEN_PATH, or $HF_HOME/token) is read
  HF_HUB_CACHE, HF_HOME
                     where the cache is (default ~/.cache/huggingface/hub)
  MODELSCOPE_DOMAIN  ModelScope address (default https://www.modelscope.cn)

Examples:
  xverse pull xverse/XVERSE-7B-Chat
  xverse pull xverse/XVERSE-13B-Chat-GGUF --include "*q4_k_m*"
  xverse pull xverse/XVERSE-7B-Chat --source modelscope
  xverse generate --model xverse/XVERSE-13B-Chat-GGUF:q4_k_m "Hello"`;

export const command: Command = {
  summary: "download a model from the Hugging Face Hub or ModelScope into the shared cache",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      include: { type: "string", multiple: true },
      exclude: { type: "string", multiple: true },
      list: { type: "boolean" },
      source: { type: "string" },
      jobs: { type: "string" },
      quiet: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new XverseError("bad_flag", `give exactly one REPO (org/name, optionally @revision), got ${positionals.length} (see --help)`);
    const m = /^([^@]+)(?:@(.+))?$/.exec(positionals[0]);
    if (!m) throw new XverseError("bad_flag", `"${positionals[0]}" is not REPO[@REVISION]`);
    const [, repo, revision] = m;
    const source = parseSource(v.source);
    const include = v.include as string[] | undefined, exclude = v.exclude as string[] | undefined;
    const jobs = numberFlag(v.jobs as string | undefined, "--jobs", { int: true, min: 1, max: 32 });
    const env = hubEnv();
    const cache = new RepoCache(env.cacheDir, repo);

    if (v.list) {
      const { signal, dispose } = interruptSignal();
      try {
        const { listing, selected } = await listRepo(repo, { source: sourceFor(source, env), revision, include, exclude, signal });
        const w = Math.max(...selected.map((f) => f.path.length), 4);
        process.stdout.write(`${repo}@${listing.revision} (${source === "modelscope" ? "snapshot" : "commit"} ${listing.commit}), ${selected.length} of ${listing.files.length} files\n`);
        for (const f of selected) {
          const state = isCached(cache, f) ? "cached" : partialBytes(cache, f) > 0 ? `partial ${fmtBytes(partialBytes(cache, f))}` : "";
          process.stdout.write(`  ${f.path.padEnd(w)}  ${fmtBytes(f.size).padStart(8)}  ${f.lfs ? "lfs" : "   "}  ${state}\n`.replace(/ +\n$/, "\n"));
        }
        process.stdout.write(`total ${fmtBytes(selected.reduce((n, f) => n + f.size, 0))}\n`);
      } finally {
        dispose();
      }
      return 0;
    }

    const t0 = performance.now();
    let r;
    try {
      r = await pullWithUi(repo, { source, revision, include, exclude, jobs, env, quiet: v.quiet === true });
    } catch (e) {
      // Ctrl-C: say how to resume and exit as an interrupted program does (128 + SIGINT)
      if (e instanceof XverseError && e.code === "interrupted") {
        process.stderr.write(`\nxverse pull: ${e.message}\n`);
        return 130;
      }
      throw e;
    }
    const secs = (performance.now() - t0) / 1000;
    const total = r.selected.reduce((n, f) => n + f.size, 0);
    process.stderr.write(
      `${repo}@${r.listing.revision}: ${r.selected.length} files, ${fmtBytes(total)} — ${r.downloadedFiles} downloaded (${fmtBytes(r.transferred)} in ${secs.toFixed(1)} s), ` +
      `${r.cachedFiles} already cached\n`);
    // stdout: the snapshot folder, so scripts can use it directly
    process.stdout.write(r.snapshotDir + "\n");
    return 0;
  },
};
