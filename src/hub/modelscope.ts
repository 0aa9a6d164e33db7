/**
 * ModelScope (www.modelscope.cn), the endpoints its own modelscope library uses (hub/api.py get_model_files,
 * file_download.get_file_download_url):
 *
 *   GET {endpoint}/api/v1/models/{repo}/repo/files?Revision={rev}&Recursive=true
 *       → { Code: 200, Success: true, Data: { Files: [{ Path, Name, Type: "blob" | "tree", Size, Sha256 }] } }
 *   GET {endpoint}/api/v1/models/{repo}/repo?Revision={rev}&FilePath={path}
 *       → the file (often a 302 to object storage), Range: bytes=N- honoured.
 *
 * The file list carries no repository head commit, so the snapshot folder is named by a SHA-1 over the sorted
 * (path, sha256, size) list: the same content gives the same snapshot, a changed file a new one. Blobs are named by
 * their sha256, so an LFS file pulled from the Hub (whose ETag is the same sha256) is stored once.
 * Public repositories only: private ones need ModelScope's login cookies, which xverse does not handle.
 */
import { createHash } from "node:crypto";
import { XverseError } from "../errors.js";
import { fetchListingJson, type RequestContext, type RetryOptions } from "./http.js";
import type { FileRequest, HubSource, Listing, RemoteFile } from "./types.js";

export interface ModelScopeOptions {
  /** Default https://www.modelscope.cn (cli: MODELSCOPE_DOMAIN). */
  endpoint?: string;
  retry?: RetryOptions;
  fetch?: typeof fetch;
}

const AUTH_HINT = "xverse pulls public ModelScope repositories only; use the Hugging Face Hub copy (drop --source modelscope) or the modelscope tool for this one";

export class ModelScope implements HubSource {
  readonly defaultRevision = "master";
  readonly endpoint: string;
  readonly label: string;
  get retry(): RetryOptions | undefined { return this.opts.retry; }
  constructor(readonly opts: ModelScopeOptions = {}) {
    const e = opts.endpoint ?? "https://www.modelscope.cn";
    this.endpoint = (/^https?:\/\//.test(e) ? e : `https://${e}`).replace(/\/+$/, "");
    this.label = `ModelScope (${this.endpoint})`;
  }

  ctx(repo: string, revision: string, path?: string): RequestContext {
    return { source: this.label, repo, revision, path, authHint: AUTH_HINT, hasToken: false };
  }

  async list(repo: string, revision: string, signal?: AbortSignal): Promise<Listing> {
    const q = new URLSearchParams({ Revision: revision, Recursive: "true" });
    const url = `${this.endpoint}/api/v1/models/${repo}/repo/files?${q}`;
    const json = await fetchListingJson(url, {}, this.ctx(repo, revision), { signal, retry: this.opts.retry, fetch: this.opts.fetch });
    return parseModelScopeListing(repo, revision, json, this.label);
  }

  fileRequest(listing: Listing, file: RemoteFile): FileRequest {
    const q = new URLSearchParams({ Revision: listing.revision, FilePath: file.path });
    return { url: `${this.endpoint}/api/v1/models/${listing.repo}/repo?${q}`, headers: {} };
  }
}

export function parseModelScopeListing(repo: string, revision: string, json: unknown, label: string): Listing {
  const j = json as { Code?: unknown; Success?: unknown; Message?: unknown; Data?: { Files?: unknown } };
  if (j?.Code !== undefined && j.Code !== 200) {
    throw new XverseError("not_found", `${label} has no ${repo}@${revision} (${String(j.Message ?? `code ${String(j.Code)}`)}): check the id and revision (ModelScope's default branch is master)`);
  }
  if (!Array.isArray(j?.Data?.Files)) throw new XverseError("bad_listing", `${label}: the file list of ${repo}@${revision} has no Data.Files`);
  const files: RemoteFile[] = [];
  for (const e of j.Data.Files as unknown[]) {
    const f = e as { Path?: unknown; Type?: unknown; Size?: unknown; Sha256?: unknown; IsLFS?: unknown };
    if (f.Type === "tree") continue;
    if (typeof f.Path !== "string" || typeof f.Size !== "number" || !Number.isSafeInteger(f.Size) || f.Size < 0) {
      throw new XverseError("bad_listing", `${label}: the file list of ${repo}@${revision} has an entry without Path / Size`);
    }
    // .gitattributes / .gitignore are repository plumbing; modelscope's own snapshot_download skips them too
    if (f.Path === ".gitattributes" || f.Path === ".gitignore") continue;
    const sha = typeof f.Sha256 === "string" && /^[0-9a-f]{64}$/.test(f.Sha256) ? f.Sha256 : undefined;
    if (!sha) throw new XverseError("bad_listing", `${label}: ${repo}/${f.Path} has no Sha256 in the file list, so it cannot be verified`);
    files.push({ path: f.Path, size: f.Size, etag: sha, sha256: sha, lfs: f.IsLFS === true });
  }
  const h = createHash("sha1");
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) h.update(`${f.path}\0${f.sha256}\0${f.size}\n`);
  return { repo, revision, commit: h.digest("hex"), files };
}
