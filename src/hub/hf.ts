/**
 * The Hugging Face Hub (or a mirror at HF_ENDPOINT). Endpoints relied on, as huggingface_hub uses them:
 *
 *   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
 *       → { sha: <commit>, siblings: [{ rfilename, size, blobId, lfs?: { sha256, size } }] }
 *         (rev is URL-encoded whole, so "refs/pr/1" works; blobs=true adds sizes, git blob ids and LFS sha256)
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}
 *       → 200 with the file (non-LFS; ETag = git blob sha1), or 302 to the LFS CDN with X-Linked-Etag = sha256
 *         and X-Linked-Size; both carry X-Repo-Commit. The CDN honours Range: bytes=N- (206 + Content-Range).
 *   Authorization: Bearer <token> on Hub requests, never on the CDN redirect (fetchFollow drops it).
 *
 * Files are resolved by the listing's commit, not the branch name, so every file of a pull comes from one commit
 * even if the branch moves meanwhile (snapshot_download does the same).
 */
import { XverseError } from "../errors.js";
import { fetchListingJson, type RequestContext, type RetryOptions } from "./http.js";
import type { FileRequest, HubSource, Listing, RemoteFile } from "./types.js";

export interface HfHubOptions {
  /** Default https://huggingface.co (cli: HF_ENDPOINT). */
  endpoint?: string;
  /** cli: HF_TOKEN, else the huggingface_hub token file. */
  token?: string;
  retry?: RetryOptions;
  fetch?: typeof fetch;
}

const TOKEN_HINT = "set HF_TOKEN=hf_… (a read token from https://huggingface.co/settings/tokens) or log in once with `huggingface-cli login` (xverse reads the token file it writes)";

function stripEtag(e: string | null): string | null {
  return e === null ? null : e.replace(/^W\//, "").replace(/^"|"$/g, "");
}

export class HfHub implements HubSource {
  readonly defaultRevision = "main";
  readonly endpoint: string;
  readonly label: string;
  get retry(): RetryOptions | undefined { return this.opts.retry; }
  constructor(readonly opts: HfHubOptions = {}) {
    this.endpoint = (opts.endpoint ?? "https://huggingface.co").replace(/\/+$/, "");
    this.label = `the Hugging Face Hub (${this.endpoint})`;
  }

  private headers(): Record<string, string> {
    return this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
  }

  ctx(repo: string, revision: string, path?: string): RequestContext {
    return { source: this.label, repo, revision, path, authHint: TOKEN_HINT, hasToken: !!this.opts.token };
  }

  async list(repo: string, revision: string, signal?: AbortSignal): Promise<Listing> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const json = await fetchListingJson(url, this.headers(), this.ctx(repo, revision), { signal, retry: this.opts.retry, fetch: this.opts.fetch, hint: "; is HF_ENDPOINT a Hub?" });
    return parseHfListing(repo, revision, json, this.label);
  }

  fileRequest(listing: Listing, file: RemoteFile): FileRequest {
    const path = file.path.split("/").map(encodeURIComponent).join("/");
    return { url: `${this.endpoint}/${listing.repo}/resolve/${listing.commit}/${path}`, headers: this.headers() };
  }

  checkHeaders(listing: Listing, file: RemoteFile, h: Headers): void {
    const where = `${this.label}, ${listing.repo}/${file.path}`;
    const commit = h.get("x-repo-commit");
    if (commit && commit !== listing.commit) {
      throw new XverseError("bad_listing", `${where}: served commit ${commit}, but the listing is of ${listing.commit}; run the pull again`);
    }
    const size = h.get("x-linked-size");
    if (file.lfs && size !== null && Number(size) !== file.size) {
      throw new XverseError("bad_listing", `${where}: X-Linked-Size is ${size} but the listing says ${file.size} bytes; run the pull again`);
    }
    const etag = stripEtag(h.get("x-linked-etag"));
    if (file.lfs && etag !== null && etag !== file.etag) {
      throw new XverseError("bad_listing", `${where}: X-Linked-Etag is ${etag} but the listing's sha256 is ${file.etag}; run the pull again`);
    }
  }
}

export function parseHfListing(repo: string, revision: string, json: unknown, label: string): Listing {
  const bad = (why: string) => new XverseError("bad_listing", `${label}: the file list of ${repo}@${revision} ${why}; is HF_ENDPOINT a Hub?`);
  const j = json as { sha?: unknown; siblings?: unknown };
  if (typeof j?.sha !== "string" || !Array.isArray(j.siblings)) throw bad("has no sha / siblings");
  const files: RemoteFile[] = j.siblings.map((s: unknown) => {
    const f = s as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } | null };
    if (typeof f.rfilename !== "string") throw bad("has a sibling without rfilename");
    const lfs = f.lfs && typeof f.lfs.sha256 === "string" ? f.lfs : null;
    const size = lfs && typeof lfs.size === "number" ? lfs.size : f.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw bad(`gives no size for ${f.rfilename} (it is asked with blobs=true)`);
    if (lfs) return { path: f.rfilename, size, etag: lfs.sha256 as string, sha256: lfs.sha256 as string, lfs: true };
    if (typeof f.blobId !== "string") throw bad(`gives no blobId for ${f.rfilename}`);
    return { path: f.rfilename, size, etag: f.blobId, gitSha1: f.blobId, lfs: false };
  });
  return { repo, revision, commit: j.sha, files };
}
