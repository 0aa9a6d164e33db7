/**
 * A local stand-in for the Hugging Face Hub and ModelScope on 127.0.0.1, speaking the subset of both protocols
 * src/hub uses (see the endpoint notes in src/hub/hf.ts and src/hub/modelscope.ts), with faults to inject:
 *   Hub:        GET /api/models/{repo}/revision/{rev}?blobs=true, GET /{repo}/resolve/{rev}/{path}
 *               (non-LFS: 200 + ETag; LFS: 302 to /cdn/{sha256} + X-Linked-Etag / X-Linked-Size / X-Repo-Commit)
 *   ModelScope: GET /api/v1/models/{repo}/repo/files?Revision=&Recursive=true, GET /api/v1/models/{repo}/repo?Revision=&FilePath=
 *   /cdn/{sha256}: the bytes, with Range: bytes=N- (206 + Content-Range, 416 past the end).
 * Every request is logged with its Range and Authorization headers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { defaultModelDir } from "../../src/model/embedded.js";

export interface FixtureFile { path: string; data: Uint8Array; lfs?: boolean }

/** The embedded stories260K model's files, as the stand-in serves them (the safetensors as an LFS file). */
export const STORIES_FILE_NAMES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"];
export function storiesFiles(): FixtureFile[] {
  return STORIES_FILE_NAMES.map((n) => ({ path: n, data: readFileSync(join(defaultModelDir(), n)), lfs: n.endsWith(".safetensors") }));
}

export interface LogEntry { method: string; url: string; range?: string; auth?: string; encoding?: string }

export interface Faults {
  /** Bytes after which the connection is destroyed, per path, on the first request for it only. */
  cutAfter?: Map<string, number>;
  /** Bytes after which the response stalls (never ends) — for Ctrl-C tests. */
  stallAfter?: Map<string, number>;
  /** Paths whose served bytes have one byte flipped. */
  corrupt?: Set<string>;
  /** Paths the resolve endpoint answers 404 EntryNotFound for (listed, but gone). */
  missing?: Set<string>;
  /** Files need `Authorization: Bearer <token>` (a gated repo); the listing stays public, as on the Hub. */
  token?: string;
  /** Ignore Range (always 200 with the whole file). */
  noRange?: boolean;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
export const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

export class FixtureHub {
  readonly log: LogEntry[] = [];
  faults: Faults = {};
  private server: Server;
  private cutDone = new Set<string>();
  private stalled: ServerResponse[] = [];
  url = "";

  constructor(readonly repo: string, readonly commit: string, readonly files: FixtureFile[]) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((r) => this.server.listen(port, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const r of this.stalled) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Clears the log and the faults (and which cuts already happened). */
  reset(): void {
    this.log.length = 0;
    this.faults = {};
    this.cutDone.clear();
  }

  /** Requests that fetched file bytes (resolve / download / cdn), i.e. what a cached pull must not make. */
  fileRequests(): LogEntry[] {
    return this.log.filter((e) => /\/resolve\/|\/cdn\/|\/repo\?/.test(e.url));
  }

  private file(path: string) { return this.files.find((f) => f.path === path); }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url!, "http://x");
    this.log.push({ method: req.method!, url: req.url!, range: req.headers.range, auth: req.headers.authorization, encoding: req.headers["accept-encoding"] });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    const repoOk = (r: string) => r === this.repo;
    let m: RegExpExecArray | null;

    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(u.pathname))) {
      if (!repoOk(m[1])) return json(401, { error: "Repository Not Found" }, { "x-error-code": "RepoNotFound" });
      const rev = decodeURIComponent(m[2]);
      if (rev !== "main" && rev !== this.commit) return json(404, { error: "Invalid rev id" }, { "x-error-code": "RevisionNotFound" });
      return json(200, {
        id: this.repo, sha: this.commit,
        siblings: this.files.map((f) => f.lfs
          ? { rfilename: f.path, size: f.data.length, blobId: gitSha1(new TextEncoder().encode(`pointer ${sha256(f.data)}`)), lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } }
          : { rfilename: f.path, size: f.data.length, blobId: gitSha1(f.data) }),
      });
    }
    // what huggingface_hub's own snapshot_download lists with (list_repo_tree), so Python can pull from this server too
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(u.pathname))) {
      if (!repoOk(m[1])) return json(401, { error: "Repository Not Found" }, { "x-error-code": "RepoNotFound" });
      return json(200, this.files.map((f) => f.lfs
        ? { type: "file", path: f.path, size: f.data.length, oid: gitSha1(new TextEncoder().encode(`pointer ${sha256(f.data)}`)), lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } }
        : { type: "file", path: f.path, size: f.data.length, oid: gitSha1(f.data) }));
    }
    if ((m = /^\/api\/v1\/models\/([^/]+\/[^/]+)\/repo\/files$/.exec(u.pathname))) {
      if (!repoOk(m[1])) return json(404, { Code: 10010205001, Message: "model not found", Success: false });
      if (u.searchParams.get("Revision") !== "master") return json(200, { Code: 10010205001, Message: "revision not found", Success: false });
      return json(200, {
        Code: 200, Success: true,
        Data: { Files: [
          { Name: "sub", Path: "sub", Type: "tree", Size: 0 },
          ...this.files.map((f) => ({ Name: f.path.split("/").pop(), Path: f.path, Type: "blob", Size: f.data.length, Sha256: sha256(f.data), IsLFS: !!f.lfs, Revision: this.commit })),
          { Name: ".gitattributes", Path: ".gitattributes", Type: "blob", Size: 3, Sha256: sha256(new Uint8Array(3)) },
        ] },
      });
    }
    if ((m = /^\/api\/v1\/models\/([^/]+\/[^/]+)\/repo$/.exec(u.pathname))) {
      const f = repoOk(m[1]) ? this.file(u.searchParams.get("FilePath") ?? "") : undefined;
      if (!f) return json(404, { Code: 404, Message: "file not found" });
      res.writeHead(302, { location: `/cdn/${sha256(f.data)}?from=modelscope` });
      return void res.end();
    }
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname))) {
      if (!repoOk(m[1])) return json(401, { error: "Repository Not Found" }, { "x-error-code": "RepoNotFound" });
      if (m[2] !== this.commit && m[2] !== "main") return json(404, {}, { "x-error-code": "RevisionNotFound" });
      const path = m[3].split("/").map(decodeURIComponent).join("/");
      const f = this.file(path);
      if (!f || this.faults.missing?.has(path)) return json(404, { error: "Entry not found" }, { "x-error-code": "EntryNotFound" });
      if (this.faults.token && req.headers.authorization !== `Bearer ${this.faults.token}`) {
        return json(401, { error: "Access to model is restricted" }, { "x-error-code": "GatedRepo" });
      }
      if (f.lfs) {
        res.writeHead(302, {
          // absolute, as the Hub's CDN address is (huggingface_hub follows only relative redirects on its HEAD)
          location: `${this.url}/cdn/${sha256(f.data)}?signature=abc`, "x-repo-commit": this.commit,
          "x-linked-etag": `"${sha256(f.data)}"`, "x-linked-size": String(f.data.length), etag: `"${gitSha1(f.data)}"`,
        });
        return void res.end();
      }
      return this.serveBytes(req, res, f, { etag: `"${gitSha1(f.data)}"`, "x-repo-commit": this.commit });
    }
    if ((m = /^\/cdn\/([0-9a-f]{64})$/.exec(u.pathname))) {
      const f = this.files.find((x) => sha256(x.data) === m![1]);
      if (!f) return json(404, {});
      // huggingface_hub's HEAD follows same-host redirects and reads the metadata at the end; the real CDN is on
      // another host, where it stops at the 302. Give its HEAD what it would have read there.
      const meta: Record<string, string> = req.method === "HEAD" ? { "x-repo-commit": this.commit, "x-linked-etag": `"${m[1]}"`, "x-linked-size": String(f.data.length) } : {};
      return this.serveBytes(req, res, f, meta);
    }
    json(404, { error: "no route" });
  }

  private serveBytes(req: IncomingMessage, res: ServerResponse, f: FixtureFile, headers: Record<string, string>): void {
    let data = Buffer.from(f.data);
    if (this.faults.corrupt?.has(f.path)) { data = Buffer.from(data); data[data.length >> 1] ^= 0x55; }
    const size = data.length;
    let start = 0;
    const rm = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (rm && !this.faults.noRange) {
      start = Number(rm[1]);
      if (start >= size) {
        res.writeHead(416, { "content-range": `bytes */${size}` });
        return void res.end();
      }
      res.writeHead(206, { ...headers, "accept-ranges": "bytes", "content-length": String(size - start), "content-range": `bytes ${start}-${size - 1}/${size}` });
    } else {
      res.writeHead(200, { ...headers, "accept-ranges": "bytes", "content-length": String(size) });
    }
    const body = data.subarray(start);
    const cut = this.faults.cutAfter?.get(f.path);
    if (cut !== undefined && !this.cutDone.has(f.path) && cut > start) {
      this.cutDone.add(f.path);
      res.write(body.subarray(0, cut - start), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const stall = this.faults.stallAfter?.get(f.path);
    if (stall !== undefined && stall > start) {
      res.write(body.subarray(0, stall - start));
      this.stalled.push(res);
      return;
    }
    res.end(body);
  }
}
